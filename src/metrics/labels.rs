//! What each task's labels must hold, checked when a golden set loads, before any model runs. A
//! label no metric can read (a NaN target, a class outside the family's classes, a fractional
//! class, a box outside the image) would otherwise be scored silently, and could let a run PASS.
//! The shapes are checked before this (see `MetricKind::label_shape`).

use ndarray::ArrayD;

use super::smt::SMT_CLASSES;
use super::MetricKind;

/// The first label a task cannot read: its row (the sample) and what is wrong with it.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelFault {
    pub row: usize,
    pub problem: String,
}

/// What labels are read against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LabelContext {
    /// How many classes the family names (`[labels] classes`); 0 when it names none, and then a
    /// class need only be a non-negative integer.
    pub classes: usize,
    /// The input image's height and width, which detection boxes must lie within.
    pub image_hw: Option<(usize, usize)>,
}

/// The detection label that pads a frame with fewer objects than the array's second axis.
const PADDING_CLASS: f32 = -1.0;

impl MetricKind {
    /// Checks every label value this metric reads; the first fault is returned.
    pub fn check_labels(self, labels: &ArrayD<f32>, context: LabelContext) -> Result<(), LabelFault> {
        let rows = labels.shape().first().copied().unwrap_or(0);
        for row in 0..rows {
            let values = labels.index_axis(ndarray::Axis(0), row);
            let values: Vec<f32> = values.iter().copied().collect();
            self.check_row(&values, context).map_err(|problem| LabelFault { row, problem })?;
        }
        Ok(())
    }

    fn check_row(self, values: &[f32], context: LabelContext) -> Result<(), String> {
        match self {
            MetricKind::Top1Accuracy => class_index(values[0], context.classes, "class"),
            MetricKind::SideslipRmse => {
                finite(values[0], "sideslip angle")?;
                finite(values[1], "friction coefficient μ")?;
                if values[1] < 0.0 {
                    return Err(format!("friction coefficient μ {} is negative", values[1]));
                }
                Ok(())
            }
            MetricKind::SmtInspection => {
                let classes = if context.classes > 0 { context.classes } else { SMT_CLASSES.len() };
                class_index(values[0], classes, "class")?;
                finite(values[1], "offset x (µm)")?;
                finite(values[2], "offset y (µm)")?;
                if values[3] != 0.0 && values[3] != 1.0 {
                    return Err(format!("micro-defect flag {} is neither 0 nor 1", values[3]));
                }
                Ok(())
            }
            MetricKind::DetectionMap50 => {
                for (k, object) in values.chunks_exact(5).enumerate() {
                    detection_object(object, context).map_err(|problem| format!("object {k}: {problem}"))?;
                }
                Ok(())
            }
            MetricKind::OutputAgreement => Ok(()),
        }
    }

    /// The slices this metric reports (`slice.<name>`), which `metric.hardest_slice` may name.
    pub fn slice_names(self) -> &'static [&'static str] {
        match self {
            MetricKind::SideslipRmse => &["dry", "wet", "snow"],
            MetricKind::SmtInspection => &["micro", "normal"],
            MetricKind::DetectionMap50 => &["easy", "moderate", "hard"],
            MetricKind::Top1Accuracy | MetricKind::OutputAgreement => &[],
        }
    }
}

fn finite(value: f32, what: &str) -> Result<(), String> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(format!("{what} {value} is not a finite number"))
    }
}

fn class_index(value: f32, classes: usize, what: &str) -> Result<(), String> {
    let in_range = value.is_finite()
        && value.fract() == 0.0
        && value >= 0.0
        && (classes == 0 || (value as f64) < classes as f64);
    if in_range {
        return Ok(());
    }
    let expected = if classes > 0 {
        format!("an integer in [0, {classes}) (the family names {classes} classes)")
    } else {
        "a non-negative integer".to_string()
    };
    Err(format!("{what} {value} is not {expected}"))
}

/// One `[class, x1, y1, x2, y2]` detection label: padding, or a known class with a finite box of
/// positive area inside the image.
fn detection_object(object: &[f32], context: LabelContext) -> Result<(), String> {
    if object[0] == PADDING_CLASS {
        return Ok(());
    }
    class_index(object[0], context.classes, "class (−1 pads)")?;
    let [x1, y1, x2, y2] = [object[1], object[2], object[3], object[4]];
    let shown = format!("box ({x1}, {y1}, {x2}, {y2})");
    if ![x1, y1, x2, y2].iter().all(|v| v.is_finite()) {
        return Err(format!("{shown} is not finite"));
    }
    if !(x2 > x1 && y2 > y1) {
        return Err(format!("{shown} has no area: expected x1 < x2 and y1 < y2"));
    }
    if let Some((h, w)) = context.image_hw {
        let (h, w) = (h as f32, w as f32);
        if x1 < 0.0 || y1 < 0.0 || x2 > w || y2 > h {
            return Err(format!("{shown} lies outside the {w}×{h} image (pixels, x then y)"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    fn labels(shape: &[usize], values: Vec<f32>) -> ArrayD<f32> {
        ArrayD::from_shape_vec(IxDyn(shape), values).unwrap()
    }

    const FOUR_CLASSES: LabelContext = LabelContext { classes: 4, image_hw: Some((160, 320)) };

    fn fault(kind: MetricKind, l: &ArrayD<f32>) -> (usize, String) {
        let f = kind.check_labels(l, FOUR_CLASSES).unwrap_err();
        (f.row, f.problem)
    }

    #[test]
    fn classification_labels_are_class_indices() {
        let ok = labels(&[3], vec![0.0, 3.0, 1.0]);
        assert_eq!(MetricKind::Top1Accuracy.check_labels(&ok, FOUR_CLASSES), Ok(()));
        for (bad, words) in [
            (f32::NAN, "class NaN is not an integer in [0, 4)"),
            (4.0, "class 4 is not an integer in [0, 4)"),
            (1.5, "class 1.5 is not"),
            (-1.0, "class -1 is not"),
        ] {
            let (row, problem) = fault(MetricKind::Top1Accuracy, &labels(&[3], vec![0.0, 1.0, bad]));
            assert_eq!(row, 2);
            assert!(problem.contains(words), "{problem}");
        }
        let unnamed = LabelContext { classes: 0, image_hw: None };
        assert_eq!(MetricKind::Top1Accuracy.check_labels(&labels(&[1], vec![17.0]), unnamed), Ok(()));
    }

    #[test]
    fn regression_targets_are_finite() {
        let (row, problem) =
            fault(MetricKind::SideslipRmse, &labels(&[2, 2], vec![1.0, 0.9, f32::INFINITY, 0.3]));
        assert_eq!((row, problem.as_str()), (1, "sideslip angle inf is not a finite number"));
        let (_, problem) = fault(MetricKind::SideslipRmse, &labels(&[1, 2], vec![1.0, f32::NAN]));
        assert!(problem.contains("friction coefficient μ NaN"), "{problem}");
    }

    #[test]
    fn smt_labels_have_a_known_class_finite_offsets_and_a_flag() {
        let context = LabelContext { classes: 0, image_hw: None };
        let ok = labels(&[1, 4], vec![5.0, -12.5, 3.0, 1.0]);
        assert_eq!(MetricKind::SmtInspection.check_labels(&ok, context), Ok(()));
        let six = |row: Vec<f32>| MetricKind::SmtInspection.check_labels(&labels(&[1, 4], row), context);
        assert!(six(vec![6.0, 0.0, 0.0, 0.0]).unwrap_err().problem.contains("[0, 6)"));
        assert!(six(vec![0.0, f32::NAN, 0.0, 0.0]).unwrap_err().problem.contains("offset x"));
        assert!(six(vec![0.0, 0.0, 0.0, 0.5]).unwrap_err().problem.contains("flag 0.5"));
    }

    #[test]
    fn detection_boxes_are_inside_the_image_with_area() {
        let frame = |object: [f32; 5]| labels(&[1, 2, 5], [[-1.0, 0.0, 0.0, 0.0, 0.0], object].concat());
        let ok = frame([2.0, 10.0, 20.0, 50.0, 60.0]);
        assert_eq!(MetricKind::DetectionMap50.check_labels(&ok, FOUR_CLASSES), Ok(()));
        for (object, words) in [
            (
                [2.0, 10.0, 20.0, 330.0, 60.0],
                "object 1: box (10, 20, 330, 60) lies outside the 320×160 image",
            ),
            ([2.0, 10.0, 20.0, 10.0, 60.0], "has no area"),
            ([2.0, f32::NAN, 20.0, 10.0, 60.0], "is not finite"),
            ([7.0, 10.0, 20.0, 50.0, 60.0], "class (−1 pads) 7 is not an integer in [0, 4)"),
            ([-2.0, 10.0, 20.0, 50.0, 60.0], "class (−1 pads) -2"),
        ] {
            let (row, problem) = fault(MetricKind::DetectionMap50, &frame(object));
            assert_eq!(row, 0);
            assert!(problem.contains(words), "{problem}");
        }
    }
}
