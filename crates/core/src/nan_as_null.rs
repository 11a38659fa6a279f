//! JSON has no NaN or infinity: serde_json writes them as `null`. These read a
//! `null` back as NaN, so plain data holding non-finite numbers (a diverged
//! run's parameters, sent to the page's GPU module) survives the round trip
//! as NaN instead of failing to parse. Use with `#[serde(deserialize_with)]`.

use serde::{Deserialize, Deserializer};

fn nan(value: Option<f64>) -> f64 {
    value.unwrap_or(f64::NAN)
}

/// A number; `null` reads as NaN.
pub fn number<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(nan(Option::<f64>::deserialize(d)?))
}

/// A list of numbers; each `null` reads as NaN.
pub fn vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    Ok(Vec::<Option<f64>>::deserialize(d)?.into_iter().map(nan).collect())
}

/// A list of lists of numbers (a matrix); each `null` reads as NaN.
pub fn vecs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<f64>>, D::Error> {
    Ok(Vec::<Vec<Option<f64>>>::deserialize(d)?.into_iter().map(|v| v.into_iter().map(nan).collect()).collect())
}

/// An optional pair (absent stays `None`; a present pair's nulls become NaN).
pub fn option_pair<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[f64; 2]>, D::Error> {
    Ok(Option::<[Option<f64>; 2]>::deserialize(d)?.map(|p| p.map(nan)))
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Serialize, Deserialize)]
    struct Holder {
        #[serde(deserialize_with = "super::vec")]
        v: Vec<f64>,
        #[serde(deserialize_with = "super::vecs")]
        vs: Vec<Vec<f64>>,
        #[serde(default, deserialize_with = "super::option_pair")]
        pair: Option<[f64; 2]>,
    }

    #[test]
    fn non_finite_numbers_come_back_as_nan_and_finite_ones_unchanged() {
        let h = Holder {
            v: vec![1.5, f64::NAN, f64::INFINITY],
            vs: vec![vec![f64::NEG_INFINITY, -2.0]],
            pair: Some([0.25, f64::NAN]),
        };
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(json, r#"{"v":[1.5,null,null],"vs":[[null,-2.0]],"pair":[0.25,null]}"#);
        let back: Holder = serde_json::from_str(&json).unwrap();
        assert_eq!(back.v[0], 1.5);
        assert!(back.v[1].is_nan() && back.v[2].is_nan() && back.vs[0][0].is_nan());
        assert_eq!(back.vs[0][1], -2.0);
        assert!(back.pair.unwrap()[1].is_nan());
        let absent: Holder = serde_json::from_str(r#"{"v":[],"vs":[]}"#).unwrap();
        assert_eq!(absent.pair, None);
        assert!(serde_json::from_str::<Holder>(r#"{"v":["x"],"vs":[]}"#).is_err(), "only null is read as NaN");
    }
}
