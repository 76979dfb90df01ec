//! JSON has no NaN or infinity, and serde_json writes them as `null`, which does not read back
//! as a number. Raw observations keep them (an output that overflowed has an infinite error),
//! so per-sample figures are written as numbers when finite and as the strings `"NaN"`,
//! `"inf"` and `"-inf"` otherwise.

use serde::de::Deserializer;
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

/// One figure as written: a JSON number, or the name of a non-finite value.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Written<'a> {
    Number(f64),
    Named(&'a str),
}

fn to_written(v: f64) -> Written<'static> {
    match v {
        v if v.is_finite() => Written::Number(v),
        v if v.is_nan() => Written::Named("NaN"),
        v if v > 0.0 => Written::Named("inf"),
        _ => Written::Named("-inf"),
    }
}

fn from_written<E: serde::de::Error>(w: Written<'_>) -> Result<f64, E> {
    match w {
        Written::Number(v) => Ok(v),
        Written::Named("NaN") => Ok(f64::NAN),
        Written::Named("inf") => Ok(f64::INFINITY),
        Written::Named("-inf") => Ok(f64::NEG_INFINITY),
        Written::Named(other) => {
            Err(E::custom(format!("expected a number, \"NaN\", \"inf\" or \"-inf\", got \"{other}\"")))
        }
    }
}

/// `#[serde(with = "crate::vocab::serde_float::vec")]` for `Vec<f64>`.
pub mod vec {
    use super::*;

    pub fn serialize<S: Serializer>(values: &[f64], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(values.len()))?;
        for v in values {
            seq.serialize_element(&to_written(*v))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        let written: Vec<Written<'_>> = Vec::deserialize(d)?;
        written.into_iter().map(from_written::<D::Error>).collect()
    }
}

/// The same for `Vec<Option<f64>>`, where `null` is `None`.
pub mod vec_option {
    use super::*;

    pub fn serialize<S: Serializer>(values: &[Option<f64>], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(values.len()))?;
        for v in values {
            seq.serialize_element(&v.map(to_written))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Option<f64>>, D::Error> {
        let written: Vec<Option<Written<'_>>> = Vec::deserialize(d)?;
        written.into_iter().map(|w| w.map(from_written::<D::Error>).transpose()).collect()
    }
}

#[cfg(test)]
mod tests {
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Figures {
        #[serde(with = "super::vec")]
        values: Vec<f64>,
    }

    #[test]
    fn non_finite_figures_read_back_as_themselves() {
        let f = Figures { values: vec![1.5, f64::INFINITY, f64::NEG_INFINITY, 0.1] };
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(json, r#"{"values":[1.5,"inf","-inf",0.1]}"#);
        assert_eq!(serde_json::from_str::<Figures>(&json).unwrap(), f);
        let nan: Figures = serde_json::from_str(r#"{"values":["NaN"]}"#).unwrap();
        assert!(nan.values[0].is_nan());
        let bad = serde_json::from_str::<Figures>(r#"{"values":["many"]}"#).unwrap_err().to_string();
        assert!(bad.contains("got \"many\""), "{bad}");
    }
}
