//! Input shapes: what the user fixes (`--input-shape NAME:1x3x640x640`, trtexec's spelling) or
//! a golden set implies, resolved against the shapes a model declares. Real-world exports leave
//! dimensions symbolic (`[N,3,H,W]`); every one must end concrete, since a silent 1 would give
//! zero MACs and tiny activations. A dimension nobody fixed is an error that names the flag.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use tract_onnx::pb;

use crate::vocab::{Error, Result};

/// Largest size of one dimension and element count of one tensor edgecert accepts: far above
/// any edge model (2^32 f32 elements is 16 GiB), low enough that products cannot overflow.
pub const MAX_DIM: u64 = 1 << 31;
pub const MAX_ELEMENTS: u64 = 1 << 32;

/// One `NAME:DIMS` spec, e.g. `images:1x3x640x640`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InputShape {
    pub name: String,
    pub dims: Vec<usize>,
}

impl FromStr for InputShape {
    type Err = String;

    /// Splits at the last `:` so TensorFlow names such as `input:0` keep their colon.
    fn from_str(spec: &str) -> std::result::Result<Self, String> {
        let usage = || format!("expected NAME:DIMS such as images:1x3x640x640, got `{spec}`");
        let (name, dims) = spec.rsplit_once(':').ok_or_else(usage)?;
        if name.is_empty() || dims.is_empty() {
            return Err(usage());
        }
        let dims = dims
            .split('x')
            .map(|d| match d.parse::<u64>() {
                Ok(n) if (1..=MAX_DIM).contains(&n) => Ok(n as usize),
                _ => Err(format!(
                    "dimension `{d}` in `{spec}` is not a whole number from 1 to {MAX_DIM}: dimensions are positive integers joined by `x`, e.g. 1x3x640x640"
                )),
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(InputShape { name: name.to_string(), dims })
    }
}

/// The shapes to run a model at: named ones from `--input-shape`, and a default for a
/// single-input model (a golden set's `input.shape`) that only fills symbolic dimensions.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct InputShapes {
    named: Vec<InputShape>,
    default: Option<Vec<usize>>,
}

impl InputShapes {
    pub fn new(named: Vec<InputShape>) -> Self {
        InputShapes { named, default: None }
    }

    /// The same, with `shape` as the default for the only input when it is not named.
    pub fn with_default(&self, shape: &[usize]) -> Self {
        InputShapes { named: self.named.clone(), default: Some(shape.to_vec()) }
    }

    fn get(&self, name: &str) -> Option<&InputShape> {
        self.named.iter().find(|s| s.name == name)
    }
}

/// A dimension as a model declares it.
#[derive(Debug, Clone, PartialEq)]
pub enum Dim {
    Fixed(usize),
    /// `dim_param`, e.g. `N` or `height`.
    Symbolic(String),
    /// Neither a value nor a name (or a non-positive value, as some exporters write).
    Unknown,
}

impl Dim {
    pub fn label(&self) -> String {
        match self {
            Dim::Fixed(n) => n.to_string(),
            Dim::Symbolic(s) => s.clone(),
            Dim::Unknown => "?".into(),
        }
    }
}

/// The declared dimensions of a value; `None` when the rank itself is unknown.
pub fn declared_dims(tensor: &pb::type_proto::Tensor) -> Option<Vec<Dim>> {
    use pb::tensor_shape_proto::dimension::Value;
    let shape = tensor.shape.as_ref()?;
    Some(
        shape
            .dim
            .iter()
            .map(|d| match &d.value {
                Some(Value::DimValue(n)) if *n > 0 => Dim::Fixed(*n as usize),
                Some(Value::DimParam(p)) if !p.is_empty() => Dim::Symbolic(p.clone()),
                _ => Dim::Unknown,
            })
            .collect(),
    )
}

/// The concrete shape of graph input `name` declared as `declared`: the named shape when given
/// (it must agree with the declared rank and fixed dimensions), else the declared shape with
/// symbolic dimensions filled from the default.
pub fn resolve(
    path: &Path,
    name: &str,
    declared: Option<&[Dim]>,
    shapes: &InputShapes,
    single_input: bool,
) -> Result<Vec<usize>> {
    if let Some(given) = shapes.get(name) {
        return check_given(path, given, declared);
    }
    let Some(declared) = declared else {
        return Err(Error::model(
            path,
            format!(
                "input `{name}` declares no shape (unknown rank); give it with --input-shape {name}:1x3x224x224 (your sizes)"
            ),
        ));
    };
    let fill = shapes.default.as_ref().filter(|d| single_input && d.len() == declared.len());
    let dims: Vec<Option<usize>> = declared
        .iter()
        .enumerate()
        .map(|(axis, d)| match d {
            Dim::Fixed(n) => Some(*n),
            _ => fill.map(|f| f[axis]),
        })
        .collect();
    match dims.iter().position(Option::is_none) {
        None => bounded(path, name, dims.into_iter().flatten().collect()),
        Some(axis) => Err(unresolved(path, name, declared, axis)),
    }
}

fn check_given(path: &Path, given: &InputShape, declared: Option<&[Dim]>) -> Result<Vec<usize>> {
    let spec = format!("--input-shape {}:{}", given.name, join(given.dims.iter().map(|d| d.to_string())));
    if let Some(declared) = declared {
        let shown = join(declared.iter().map(Dim::label));
        if declared.len() != given.dims.len() {
            return Err(Error::model(
                path,
                format!(
                    "{spec} has {} dimensions but input `{}` is declared with {} ({shown})",
                    given.dims.len(),
                    given.name,
                    declared.len()
                ),
            ));
        }
        for (axis, (d, g)) in declared.iter().zip(&given.dims).enumerate() {
            if let Dim::Fixed(n) = d {
                if n != g {
                    return Err(Error::model(
                        path,
                        format!(
                            "{spec} gives {g} at axis {axis}, but input `{}` fixes it to {n} ({shown})",
                            given.name
                        ),
                    ));
                }
            }
        }
    }
    bounded(path, &given.name, given.dims.clone())
}

/// A shape whose element count stays within [`MAX_ELEMENTS`].
fn bounded(path: &Path, name: &str, dims: Vec<usize>) -> Result<Vec<usize>> {
    match element_count(dims.iter().map(|&d| d as u64)) {
        Some(n) if n <= MAX_ELEMENTS => Ok(dims),
        _ => Err(Error::model(
            path,
            format!("input `{name}` of shape {dims:?} has more than {MAX_ELEMENTS} elements"),
        )),
    }
}

/// Product of dimensions, `None` on u64 overflow.
pub fn element_count(dims: impl IntoIterator<Item = u64>) -> Option<u64> {
    dims.into_iter().try_fold(1u64, |acc, d| acc.checked_mul(d))
}

fn unresolved(path: &Path, name: &str, declared: &[Dim], axis: usize) -> Error {
    let what = match &declared[axis] {
        Dim::Symbolic(s) => format!("symbolic dimension `{s}`"),
        _ => "a dimension of unknown size".to_string(),
    };
    Error::model(
        path,
        format!(
            "input `{name}` has {what} at axis {axis} ({}) and nothing fixes it; give its size with --input-shape {name}:{} (replacing the names by sizes)",
            join(declared.iter().map(Dim::label)),
            join(declared.iter().map(Dim::label)),
        ),
    )
}

/// Every named shape must name an input of the model: a typo must not be silently ignored.
pub fn check_names<'a>(
    path: &Path,
    shapes: &InputShapes,
    inputs: impl Iterator<Item = &'a str>,
) -> Result<()> {
    let inputs: Vec<&str> = inputs.collect();
    let mut seen = BTreeMap::new();
    for s in &shapes.named {
        if seen.insert(s.name.as_str(), ()).is_some() {
            return Err(Error::model(path, format!("--input-shape gives `{}` twice", s.name)));
        }
        if !inputs.contains(&s.name.as_str()) {
            return Err(Error::model(
                path,
                format!(
                    "--input-shape names `{}`, but the model takes {}",
                    s.name,
                    inputs.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    Ok(())
}

fn join(parts: impl Iterator<Item = String>) -> String {
    parts.collect::<Vec<_>>().join("x")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_in_trtexec_spelling() {
        let s: InputShape = "images:1x3x640x640".parse().unwrap();
        assert_eq!(s, InputShape { name: "images".into(), dims: vec![1, 3, 640, 640] });
        let tf: InputShape = "input:0:1x224x224x3".parse().unwrap();
        assert_eq!(tf.name, "input:0");
    }

    #[test]
    fn malformed_specs_say_what_is_expected() {
        for (spec, words) in [
            ("images", "expected NAME:DIMS such as images:1x3x640x640, got `images`"),
            (":1x3", "expected NAME:DIMS"),
            ("images:", "expected NAME:DIMS"),
            ("images:1x3xHx640", "dimension `H` in `images:1x3xHx640` is not a whole number"),
            ("images:1x0x2", "dimension `0`"),
            ("images:1,3,4", "dimension `1,3,4`"),
        ] {
            let err = spec.parse::<InputShape>().unwrap_err();
            assert!(err.contains(words), "{spec}: {err}");
        }
    }

    fn dims(v: &[&str]) -> Vec<Dim> {
        v.iter().map(|d| d.parse().map(Dim::Fixed).unwrap_or_else(|_| Dim::Symbolic(d.to_string()))).collect()
    }

    #[test]
    fn symbolic_dims_are_fixed_by_the_flag_or_the_default_never_by_one() {
        let p = Path::new("m.onnx");
        let declared = dims(&["N", "3", "H", "W"]);
        let none = InputShapes::default();
        let err = resolve(p, "images", Some(&declared), &none, true).unwrap_err().to_string();
        assert_eq!(
            err,
            "m.onnx: input `images` has symbolic dimension `N` at axis 0 (Nx3xHxW) and nothing fixes it; give its size with --input-shape images:Nx3xHxW (replacing the names by sizes)"
        );
        let given = InputShapes::new(vec!["images:1x3x64x48".parse().unwrap()]);
        assert_eq!(resolve(p, "images", Some(&declared), &given, true).unwrap(), vec![1, 3, 64, 48]);
        let golden = none.with_default(&[1, 3, 32, 32]);
        assert_eq!(resolve(p, "images", Some(&declared), &golden, true).unwrap(), vec![1, 3, 32, 32]);
        // The flag wins over the golden default.
        assert_eq!(
            resolve(p, "images", Some(&declared), &given.with_default(&[1, 3, 32, 32]), true).unwrap(),
            vec![1, 3, 64, 48]
        );
    }

    #[test]
    fn a_given_shape_must_agree_with_the_declared_one() {
        let p = Path::new("m.onnx");
        let declared = dims(&["N", "3", "H", "W"]);
        let wrong_rank = InputShapes::new(vec!["x:1x3x64".parse().unwrap()]);
        let err = resolve(p, "x", Some(&declared), &wrong_rank, true).unwrap_err().to_string();
        assert!(
            err.contains(
                "--input-shape x:1x3x64 has 3 dimensions but input `x` is declared with 4 (Nx3xHxW)"
            ),
            "{err}"
        );
        let wrong_channels = InputShapes::new(vec!["x:1x4x64x64".parse().unwrap()]);
        let err = resolve(p, "x", Some(&declared), &wrong_channels, true).unwrap_err().to_string();
        assert!(err.contains("gives 4 at axis 1, but input `x` fixes it to 3"), "{err}");
        let huge = InputShapes::new(vec!["x:65536x3x65536x65536".parse().unwrap()]);
        let err = resolve(p, "x", Some(&declared), &huge, true).unwrap_err().to_string();
        assert!(err.contains("more than 4294967296 elements"), "{err}");
    }

    #[test]
    fn an_input_of_unknown_rank_needs_the_flag() {
        let p = Path::new("m.onnx");
        let err = resolve(p, "x", None, &InputShapes::default().with_default(&[1, 3]), true).unwrap_err();
        assert!(
            err.to_string()
                .contains("input `x` declares no shape (unknown rank); give it with --input-shape x:"),
            "{err}"
        );
        let given = InputShapes::new(vec!["x:2x5".parse().unwrap()]);
        assert_eq!(resolve(p, "x", None, &given, true).unwrap(), vec![2, 5]);
    }

    #[test]
    fn a_named_shape_must_name_an_input() {
        let shapes = InputShapes::new(vec!["imgs:1x3x8x8".parse().unwrap()]);
        let err = check_names(Path::new("m.onnx"), &shapes, ["images"].into_iter()).unwrap_err().to_string();
        assert!(err.contains("--input-shape names `imgs`, but the model takes `images`"), "{err}");
    }
}
