//! Browser layer (being written).
