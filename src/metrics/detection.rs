//! Object detection: all-point interpolated average precision at IoU 0.5 per class, their mean,
//! and the same restricted to object-height buckets as in KITTI (easy ≥ 40 px, moderate 25–40
//! px, hard < 25 px): ground truth outside the bucket is ignored, and so are detections that
//! match it or whose height lies outside the bucket.
//!
//! The model's output is a grid `[1, 1 + C + 4C, H', W']` at stride `s = input width / W'`:
//! channel 0 is background (not used to gate detections), 1..=C the class scores, then for
//! each class its box `tx, ty, tw, th` (class-specific regression): centre
//! `((x + 0.5 + tx)·s, (y + 0.5 + ty)·s)`, size `(exp(tw)·s, exp(th)·s)`.

use std::sync::OnceLock;

use ndarray::ArrayD;
use serde::{Deserialize, Serialize};

use super::{Evaluation, Scorer, PRIMARY};
use crate::engine::Tensor;

pub const IOU_THRESHOLD: f64 = 0.5;
/// Cells scoring below this are not detections.
pub const SCORE_THRESHOLD: f32 = 0.1;
const NMS_IOU: f64 = 0.45;
const MAX_DETECTIONS: usize = 50;
pub const BUCKETS: [(&str, f64, f64); 3] =
    [("easy", 40.0, f64::INFINITY), ("moderate", 25.0, 40.0), ("hard", 0.0, 25.0)];

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Box2 {
    pub x1: f64,
    pub y1: f64,
    pub x2: f64,
    pub y2: f64,
}

impl Box2 {
    pub fn height(&self) -> f64 {
        self.y2 - self.y1
    }
    fn area(&self) -> f64 {
        (self.x2 - self.x1).max(0.0) * (self.y2 - self.y1).max(0.0)
    }
}

pub fn iou(a: &Box2, b: &Box2) -> f64 {
    let inter = Box2 { x1: a.x1.max(b.x1), y1: a.y1.max(b.y1), x2: a.x2.min(b.x2), y2: a.y2.min(b.y2) };
    let i = if inter.x2 > inter.x1 && inter.y2 > inter.y1 { inter.area() } else { 0.0 };
    let u = a.area() + b.area() - i;
    if u > 0.0 {
        i / u
    } else {
        0.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    pub class: usize,
    pub score: f32,
    pub bbox: Box2,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GroundTruth {
    pub class: usize,
    pub bbox: Box2,
}

/// Decodes one output grid into detections (per-class NMS applied).
pub fn decode_grid(out: &Tensor, classes: usize, input_width: usize) -> Vec<Detection> {
    let (h, w) = (out.shape()[2], out.shape()[3]);
    let stride = input_width as f64 / w as f64;
    let mut dets = Vec::new();
    for gy in 0..h {
        for gx in 0..w {
            let score = |c: usize| out[[0, c, gy, gx]];
            let Some(best) = (1..=classes).max_by(|&a, &b| score(a).total_cmp(&score(b))) else { continue };
            let s = score(best);
            // The class score alone ranks detections; the background channel is not a gate
            // (a regression-trained head leaves it high wherever objects are small).
            if s.is_nan() || s <= SCORE_THRESHOLD {
                continue;
            }
            let t = |k: usize| out[[0, 1 + classes + 4 * (best - 1) + k, gy, gx]] as f64;
            let (cx, cy) = ((gx as f64 + 0.5 + t(0)) * stride, (gy as f64 + 0.5 + t(1)) * stride);
            let (bw, bh) = (t(2).clamp(-6.0, 6.0).exp() * stride, t(3).clamp(-6.0, 6.0).exp() * stride);
            let bbox = Box2 { x1: cx - bw / 2.0, y1: cy - bh / 2.0, x2: cx + bw / 2.0, y2: cy + bh / 2.0 };
            // A box that is not finite can never match nor fall in a height bucket, so scoring
            // ignores it anyway; dropping it here keeps the recorded detections finite (JSON has
            // no NaN). An infinite score ranks as the largest finite one.
            if [bbox.x1, bbox.y1, bbox.x2, bbox.y2].iter().all(|v| v.is_finite()) {
                dets.push(Detection { class: best - 1, score: s.min(f32::MAX), bbox });
            }
        }
    }
    nms(dets)
}

fn nms(mut dets: Vec<Detection>) -> Vec<Detection> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::new();
    for d in dets {
        if kept.len() == MAX_DETECTIONS {
            break;
        }
        if !kept.iter().any(|k| k.class == d.class && iou(&k.bbox, &d.bbox) > NMS_IOU) {
            kept.push(d);
        }
    }
    kept
}

/// All-point interpolated AP from (score, is-true-positive) pairs and the ground-truth count.
/// Pairs of equal score keep the order they are given in.
pub fn average_precision(mut scored: Vec<(f32, bool)>, positives: usize) -> Option<f64> {
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let ranked: Vec<bool> = scored.into_iter().map(|(_, is_tp)| is_tp).collect();
    average_precision_of_ranked(&ranked, positives)
}

/// All-point interpolated AP from detections already ranked best first (true positive or not).
///
/// One pass from the lowest-ranked detection up, keeping the precision envelope (the best
/// precision at this recall or any higher one): the true positives above a rank are the total
/// less those below it, so the curve is never stored (a bootstrap calls this for every resample).
fn average_precision_of_ranked(ranked: &[bool], positives: usize) -> Option<f64> {
    if positives == 0 {
        return None;
    }
    let mut tp = ranked.iter().filter(|&&is_tp| is_tp).count();
    let recall_of = |tp: usize| tp as f64 / positives as f64;
    let (mut ap, mut best) = (0.0, 0.0f64);
    let mut prev_recall = recall_of(tp);
    for (i, &is_tp) in ranked.iter().enumerate().rev() {
        // `tp` true positives among the first i + 1 detections.
        let (recall, precision) = (recall_of(tp), tp as f64 / (i + 1) as f64);
        ap += (prev_recall - recall) * best;
        best = best.max(precision);
        prev_recall = recall;
        tp -= usize::from(is_tp);
    }
    ap += prev_recall * best;
    Some(ap)
}

/// Per frame: the model's detections (decoded, after NMS) and the labelled objects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectionScorer {
    detections: Vec<Vec<Detection>>,
    truths: Vec<Vec<GroundTruth>>,
    classes: Vec<String>,
    /// Each frame's matches, made once: a bootstrap evaluates thousands of resamples of the same
    /// frames, and which detection matches which object depends on the frame alone.
    #[serde(skip)]
    matches: OnceLock<Matches>,
}

/// The height ranges AP is computed over: every object, then each of [`BUCKETS`].
const RANGES: [(f64, f64); 4] = [
    (0.0, f64::INFINITY),
    (BUCKETS[0].1, BUCKETS[0].2),
    (BUCKETS[1].1, BUCKETS[1].2),
    (BUCKETS[2].1, BUCKETS[2].2),
];

/// One (height range, class): each frame's share of its AP, with scores replaced by their rank
/// among every distinct score of any frame (0 the highest), so that a resample is ranked by a
/// counting sort instead of a comparison sort.
#[derive(Debug, Clone, Default, PartialEq)]
struct ClassMatches {
    frames: Vec<FrameMatches>,
    distinct_scores: usize,
}

/// One frame's objects in the range, and its detections that count as (score rank, true
/// positive), best first.
#[derive(Debug, Clone, Default, PartialEq)]
struct FrameMatches {
    positives: usize,
    ranked: Vec<(usize, bool)>,
}

impl ClassMatches {
    fn new(frames: Vec<Vec<(f32, bool)>>, positives: Vec<usize>) -> Self {
        let mut scores: Vec<f32> = frames.iter().flatten().map(|&(score, _)| score).collect();
        scores.sort_by(|a, b| b.total_cmp(a));
        scores.dedup_by(|a, b| a.total_cmp(b).is_eq());
        let rank = |score: f32| scores.partition_point(|s| s.total_cmp(&score).is_gt());
        let frames = frames
            .into_iter()
            .zip(positives)
            .map(|(scored, positives)| FrameMatches {
                positives,
                ranked: scored.into_iter().map(|(score, is_tp)| (rank(score), is_tp)).collect(),
            })
            .collect();
        ClassMatches { frames, distinct_scores: scores.len() }
    }

    /// AP over frames `idx`: their detections ranked by score, equal scores in the order `idx`
    /// gives their frames (what a stable sort of the frames' detections, concatenated, gives).
    fn average_precision(&self, idx: &[usize]) -> Option<f64> {
        let positives = idx.iter().map(|&f| self.frames[f].positives).sum();
        let mut starts = vec![0usize; self.distinct_scores + 1];
        for &f in idx {
            for &(rank, _) in &self.frames[f].ranked {
                starts[rank + 1] += 1;
            }
        }
        for r in 1..starts.len() {
            starts[r] += starts[r - 1];
        }
        let mut ranked = vec![false; starts[self.distinct_scores]];
        for &f in idx {
            for &(rank, is_tp) in &self.frames[f].ranked {
                ranked[starts[rank]] = is_tp;
                starts[rank] += 1;
            }
        }
        average_precision_of_ranked(&ranked, positives)
    }
}

/// [`ClassMatches`] indexed by height range, then class.
type Matches = Vec<Vec<ClassMatches>>;

impl DetectionScorer {
    /// `labels` is [N, K, 5]: class (−1 pads), x1, y1, x2, y2 in pixels. `input_width` is the
    /// image width the grid stride is derived from.
    pub fn new(
        outputs: &[Vec<Tensor>],
        labels: &ArrayD<f32>,
        classes: &[String],
        input_width: usize,
    ) -> Self {
        let detections = outputs.iter().map(|o| decode_grid(&o[0], classes.len(), input_width)).collect();
        let truths = (0..outputs.len())
            .map(|i| {
                (0..labels.shape()[1])
                    .filter(|&k| labels[[i, k, 0]] >= 0.0)
                    .map(|k| GroundTruth {
                        class: labels[[i, k, 0]] as usize,
                        bbox: Box2 {
                            x1: labels[[i, k, 1]] as f64,
                            y1: labels[[i, k, 2]] as f64,
                            x2: labels[[i, k, 3]] as f64,
                            y2: labels[[i, k, 4]] as f64,
                        },
                    })
                    .collect()
            })
            .collect();
        DetectionScorer { detections, truths, classes: classes.to_vec(), matches: OnceLock::new() }
    }

    /// Frame `f`'s detections of `class` matched greedily (highest score first) to its objects of
    /// that class at IoU ≥ 0.5, counting only objects with height in [lo, hi): the objects in
    /// range, and the detections that count as (score, true positive), best first.
    fn frame_matches(&self, f: usize, class: usize, (lo, hi): (f64, f64)) -> (Vec<(f32, bool)>, usize) {
        let in_bucket = |b: &Box2| b.height() >= lo && b.height() < hi;
        let gts: Vec<&GroundTruth> = self.truths[f].iter().filter(|g| g.class == class).collect();
        let positives = gts.iter().filter(|g| in_bucket(&g.bbox)).count();
        let mut taken = vec![false; gts.len()];
        let mut dets: Vec<&Detection> = self.detections[f].iter().filter(|d| d.class == class).collect();
        dets.sort_by(|a, b| b.score.total_cmp(&a.score));
        let mut scored = Vec::new();
        for d in dets {
            let best = (0..gts.len())
                .filter(|&g| !taken[g])
                .map(|g| (g, iou(&d.bbox, &gts[g].bbox)))
                .filter(|&(_, v)| v >= IOU_THRESHOLD)
                .max_by(|a, b| a.1.total_cmp(&b.1));
            match best {
                Some((g, _)) => {
                    taken[g] = true;
                    if in_bucket(&gts[g].bbox) {
                        scored.push((d.score, true));
                    }
                }
                None if in_bucket(&d.bbox) => scored.push((d.score, false)),
                None => {}
            }
        }
        (scored, positives)
    }

    fn matches(&self) -> &Matches {
        self.matches.get_or_init(|| {
            RANGES
                .iter()
                .map(|&range| {
                    (0..self.classes.len())
                        .map(|c| {
                            let (scored, positives) =
                                (0..self.truths.len()).map(|f| self.frame_matches(f, c, range)).unzip();
                            ClassMatches::new(scored, positives)
                        })
                        .collect()
                })
                .collect()
        })
    }

    /// AP of `class` over frames `idx` in height range `range` (an index into [`RANGES`]).
    fn ap(&self, idx: &[usize], class: usize, range: usize) -> Option<f64> {
        self.matches()[range][class].average_precision(idx)
    }

    fn mean_ap(&self, idx: &[usize], range: usize, e: Option<&mut Evaluation>) -> f64 {
        let aps: Vec<(usize, f64)> =
            (0..self.classes.len()).filter_map(|c| self.ap(idx, c, range).map(|a| (c, a))).collect();
        if let Some(e) = e {
            for &(c, a) in &aps {
                e.insert(format!("ap.{}", self.classes[c]), a);
            }
        }
        aps.iter().map(|a| a.1).sum::<f64>() / aps.len().max(1) as f64
    }
}

impl DetectionScorer {
    pub(super) fn extend(&mut self, other: Self) {
        self.detections.extend(other.detections);
        self.truths.extend(other.truths);
        self.matches = OnceLock::new();
    }

    pub(super) fn lengths(&self) -> Vec<(&'static str, usize)> {
        vec![("truths", self.truths.len()), ("detections", self.detections.len())]
    }
}

impl Scorer for DetectionScorer {
    fn len(&self) -> usize {
        self.truths.len()
    }

    fn evaluate(&self, idx: &[usize]) -> Evaluation {
        let mut e = Evaluation::new();
        let overall = self.mean_ap(idx, 0, Some(&mut e));
        e.insert(PRIMARY.into(), overall);
        for (range, (name, _, _)) in BUCKETS.iter().enumerate() {
            e.insert(format!("slice.{name}"), self.mean_ap(idx, range + 1, None));
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    #[test]
    fn iou_of_known_boxes() {
        let a = Box2 { x1: 0.0, y1: 0.0, x2: 10.0, y2: 10.0 };
        let b = Box2 { x1: 5.0, y1: 0.0, x2: 15.0, y2: 10.0 };
        assert!((iou(&a, &b) - 50.0 / 150.0).abs() < 1e-12);
        assert_eq!(iou(&a, &a), 1.0);
    }

    #[test]
    fn average_precision_of_a_known_pr_curve() {
        // 3 positives; ranked TP, FP, TP, FP, TP → (R, P) = (1/3, 1), (1/3, 1/2), (2/3, 2/3),
        // (2/3, 1/2), (1, 3/5). Envelope: 1 up to R 1/3, 2/3 up to 2/3, 3/5 up to 1.
        let scored = vec![(0.9, true), (0.8, false), (0.7, true), (0.6, false), (0.5, true)];
        let ap = average_precision(scored, 3).unwrap();
        let expected = (1.0 / 3.0) * 1.0 + (1.0 / 3.0) * (2.0 / 3.0) + (1.0 / 3.0) * 0.6;
        assert!((ap - expected).abs() < 1e-12, "{ap} vs {expected}");
        assert_eq!(average_precision(vec![(0.5, true)], 2), Some(0.5));
        assert_eq!(average_precision(vec![], 0), None);
    }

    /// A one-frame grid with one confident cell decodes to the expected box, and scores AP 1.
    #[test]
    fn grid_decoding_and_map_on_a_perfect_frame() {
        let mut out = ArrayD::<f32>::zeros(IxDyn(&[1, 1 + 2 + 8, 4, 8]));
        out[[0, 0, 1, 2]] = 0.0;
        out[[0, 2, 1, 2]] = 0.9; // class 1 at cell (y 1, x 2), stride 8
        out[[0, 9, 1, 2]] = (16.0f32 / 8.0).ln(); // class 1's width: 16
        out[[0, 10, 1, 2]] = (32.0f32 / 8.0).ln(); // class 1's height: 32
        out[[0, 5, 1, 2]] = 3.0; // class 0's box channels must not be read
        let dets = decode_grid(&out, 2, 64);
        assert_eq!(dets.len(), 1);
        assert_eq!(dets[0].class, 1);
        let b = dets[0].bbox;
        assert!((b.x1 - 12.0).abs() < 1e-4 && (b.y1 + 4.0).abs() < 1e-4 && (b.x2 - 28.0).abs() < 1e-4);
        let labels = ArrayD::from_shape_vec(
            IxDyn(&[1, 2, 5]),
            vec![1.0, 12.0, -4.0, 28.0, 28.0, -1.0, 0.0, 0.0, 0.0, 0.0],
        )
        .unwrap();
        let s = DetectionScorer::new(&[vec![out]], &labels, &["car".into(), "pedestrian".into()], 64);
        let e = s.evaluate_all();
        assert_eq!(e[PRIMARY], 1.0);
        assert_eq!(e["ap.pedestrian"], 1.0);
        assert!(!e.contains_key("ap.car"), "no car in the ground truth: AP undefined, not 0");
        assert_eq!(e["slice.moderate"], 1.0);
    }

    #[test]
    fn buckets_ignore_ground_truth_of_other_heights() {
        let gt = |y2: f64| GroundTruth { class: 0, bbox: Box2 { x1: 0.0, y1: 0.0, x2: 10.0, y2 } };
        let det = |y2: f64, score: f32| Detection {
            class: 0,
            score,
            bbox: Box2 { x1: 0.0, y1: 0.0, x2: 10.0, y2 },
        };
        // A tall object found, a small one missed.
        let s = DetectionScorer {
            detections: vec![vec![det(50.0, 0.9)]],
            truths: vec![vec![
                gt(50.0),
                GroundTruth { class: 0, bbox: Box2 { x1: 40.0, y1: 0.0, x2: 45.0, y2: 10.0 } },
            ]],
            classes: vec!["car".into()],
            matches: OnceLock::new(),
        };
        let e = s.evaluate_all();
        assert_eq!(e[PRIMARY], 0.5);
        assert_eq!(e["slice.easy"], 1.0);
        assert_eq!(e["slice.hard"], 0.0);
    }

    proptest::proptest! {
        /// Ranking a resample by score rank (a counting sort) is the stable comparison sort of
        /// its frames' detections, ties included: the same AP to the bit.
        #[test]
        fn a_resample_ranked_by_counting_is_ranked_as_by_sorting(
            frames in proptest::collection::vec(
                (proptest::collection::vec((0u8..6, proptest::bool::ANY), 0..6), 0usize..4),
                1..8,
            ),
            draws in proptest::collection::vec(0usize..1000, 0..20),
        ) {
            // Few distinct scores, so that ties across frames are common.
            let scored: Vec<Vec<(f32, bool)>> = frames
                .iter()
                .map(|(dets, _)| {
                    let mut d: Vec<(f32, bool)> = dets.iter().map(|&(s, tp)| (f32::from(s) / 8.0, tp)).collect();
                    d.sort_by(|a, b| b.0.total_cmp(&a.0));
                    d
                })
                .collect();
            let positives: Vec<usize> = frames.iter().map(|f| f.1).collect();
            let idx: Vec<usize> = draws.iter().map(|d| d % frames.len()).collect();
            let by_sorting = average_precision(
                idx.iter().flat_map(|&f| scored[f].iter().copied()).collect(),
                idx.iter().map(|&f| positives[f]).sum(),
            );
            let by_counting = ClassMatches::new(scored, positives).average_precision(&idx);
            proptest::prop_assert_eq!(by_sorting.map(f64::to_bits), by_counting.map(f64::to_bits));
        }
    }
}
