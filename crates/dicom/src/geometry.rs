//! Slice order: the one rule by which Lumen stacks the slices of a series, used by the AI
//! engine (its volume's z index), the review API (a finding's slice index) and, through the
//! order the review API serves, the browser viewer.
//!
//! Slices are sorted by their position along the slice normal (the cross product of the
//! ImageOrientationPatient row and column directions), with Instance Number breaking ties.
//! The normal is turned so that its patient-z component is not negative: index 0 is the
//! slice nearest the feet for an axial series, whichever way the scanner wrote the
//! orientation. A series written with the normal pointing the other way (row x column
//! towards the feet) is therefore stacked the same way as one written the usual way.

/// The slice normal of an orientation (row direction, then column direction), unit length
/// and turned towards the head; `None` when the directions are degenerate.
pub fn slice_normal(orientation: [f64; 6]) -> Option<[f64; 3]> {
    let r = [orientation[0], orientation[1], orientation[2]];
    let c = [orientation[3], orientation[4], orientation[5]];
    let n = [
        r[1] * c[2] - r[2] * c[1],
        r[2] * c[0] - r[0] * c[2],
        r[0] * c[1] - r[1] * c[0],
    ];
    let len = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
    if !len.is_finite() || len < 1e-6 {
        return None;
    }
    let s = if n[2] < 0.0 { -1.0 / len } else { 1.0 / len };
    Some([n[0] * s, n[1] * s, n[2] * s])
}

/// The position of a slice along `normal` (mm): its sort key.
pub fn along(position: [f64; 3], normal: [f64; 3]) -> f64 {
    position[0] * normal[0] + position[1] * normal[1] + position[2] * normal[2]
}

/// Sorts slices in Lumen's slice order along `normal` (from [`slice_normal`]): by position
/// along it, then by Instance Number.
pub fn sort_slices<T>(
    slices: &mut [T],
    normal: [f64; 3],
    position: impl Fn(&T) -> [f64; 3],
    instance_number: impl Fn(&T) -> Option<i64>,
) {
    slices.sort_by(|a, b| {
        along(position(a), normal)
            .total_cmp(&along(position(b), normal))
            .then(instance_number(a).cmp(&instance_number(b)))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reversed_normals_stack_the_same_way() {
        // The usual axial orientation (normal +z) and one with the column direction
        // reversed (normal -z) give the same order: feet first.
        let usual = slice_normal([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]).expect("normal");
        let reversed = slice_normal([1.0, 0.0, 0.0, 0.0, -1.0, 0.0]).expect("normal");
        assert_eq!(usual, [0.0, 0.0, 1.0]);
        assert_eq!(reversed, [0.0, 0.0, 1.0]);
        let mut a = vec![(-10.0, 1), (-30.0, 3), (-20.0, 2), (-20.0, 1)];
        sort_slices(&mut a, reversed, |s| [0.0, 0.0, s.0], |s| Some(s.1));
        assert_eq!(a, vec![(-30.0, 3), (-20.0, 1), (-20.0, 2), (-10.0, 1)]);
        assert!(slice_normal([1.0, 0.0, 0.0, 1.0, 0.0, 0.0]).is_none());
    }
}
