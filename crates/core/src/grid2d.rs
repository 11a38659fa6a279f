//! A regular 2D grid of points, generated on the GPU from its description so
//! that a 512 x 512 boundary needs no upload.

/// `nx * ny` points, row by row: point `iy * nx + ix` is
/// `(x0 + ix * (x1 - x0) / (nx - 1), y0 + iy * (y1 - y0) / (ny - 1))` for
/// `x_range = (x0, x1)`, `y_range = (y0, y1)` (a single column or row sits at
/// `x0` or `y0`). A range may run downwards, e.g. `y_range = (top, bottom)` for
/// an image whose first row is at the top; see [`Grid2d::cell_centres`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Grid2d {
    /// First and last x coordinate `(x0, x1)`.
    pub x_range: (f64, f64),
    /// First and last y coordinate `(y0, y1)`; may run downwards.
    pub y_range: (f64, f64),
    /// Number of columns (points along x).
    pub nx: usize,
    /// Number of rows (points along y).
    pub ny: usize,
}

impl Grid2d {
    /// A square grid of `n x n` points over `[lo, hi]^2`.
    pub fn square(lo: f64, hi: f64, n: usize) -> Self {
        Grid2d { x_range: (lo, hi), y_range: (lo, hi), nx: n, ny: n }
    }

    /// The centres of an `n x n` image over `[lo, hi]^2`, first row at the top
    /// (y = hi): the pixel layout of a heatmap.
    pub fn cell_centres(lo: f64, hi: f64, n: usize) -> Self {
        let half = (hi - lo) / (2 * n.max(1)) as f64;
        Grid2d { x_range: (lo + half, hi - half), y_range: (hi - half, lo + half), nx: n, ny: n }
    }

    /// Number of points: `nx * ny`.
    pub fn len(&self) -> usize {
        self.nx * self.ny
    }

    /// True when the grid has no points (`nx` or `ny` is 0).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The points in order (what the CPU path evaluates).
    pub fn points(&self) -> Vec<[f64; 2]> {
        let step = |(lo, hi): (f64, f64), n: usize| if n > 1 { (hi - lo) / (n - 1) as f64 } else { 0.0 };
        let (dx, dy) = (step(self.x_range, self.nx), step(self.y_range, self.ny));
        (0..self.ny)
            .flat_map(|iy| (0..self.nx).map(move |ix| [ix as f64, iy as f64]))
            .map(|[ix, iy]| [self.x_range.0 + ix * dx, self.y_range.0 + iy * dy])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_included_and_rows_follow_y() {
        let g = Grid2d { x_range: (-1.0, 1.0), y_range: (0.0, 2.0), nx: 3, ny: 2 };
        assert_eq!(g.points(), vec![[-1.0, 0.0], [0.0, 0.0], [1.0, 0.0], [-1.0, 2.0], [0.0, 2.0], [1.0, 2.0]]);
    }

    #[test]
    fn cell_centres_are_an_image_top_row_first() {
        // 4 x 4 pixels over [-2, 2]^2: centres at -1.5, -0.5, 0.5, 1.5; the first row is y = 1.5.
        let p = Grid2d::cell_centres(-2.0, 2.0, 4).points();
        assert_eq!(p[0], [-1.5, 1.5]);
        assert_eq!(p[3], [1.5, 1.5]);
        assert_eq!(p[15], [1.5, -1.5]);
    }
}
