//! The `.npy` tensor format (NumPy's, version 1.0), little-endian f32 in C order: the on-disk
//! form of golden inputs and labels, readable by NumPy for anyone auditing a golden set.

use std::path::Path;

use ndarray::{ArrayD, IxDyn};

use crate::vocab::{Error, Result};

const MAGIC: &[u8] = b"\x93NUMPY";

pub fn encode(array: &ArrayD<f32>) -> Vec<u8> {
    let shape: Vec<String> = array.shape().iter().map(|d| d.to_string()).collect();
    let shape = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!("({})", shape.join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    // Pad so the data starts on a 64-byte boundary, as NumPy does.
    let unpadded = MAGIC.len() + 2 + 2 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(header.len() + 10 + array.len() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for x in array.iter() {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

pub fn decode(path: &Path, bytes: &[u8]) -> Result<ArrayD<f32>> {
    let layout = Layout::read(path, bytes, bytes.len() as u64)?;
    let data = &bytes[layout.data_offset as usize..];
    let values = data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    ArrayD::from_shape_vec(IxDyn(&layout.shape), values).map_err(|e| Error::golden(path, e.to_string()))
}

/// The largest `.npy` header read: NumPy writes a few hundred bytes.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Where a `.npy` file's float32 data lies, from its header, checked against the file's length.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub shape: Vec<usize>,
    pub data_offset: u64,
}

impl Layout {
    /// Reads the layout from the file's first bytes (`head`, at least the header) and its
    /// total length.
    pub fn read(path: &Path, head: &[u8], file_len: u64) -> Result<Layout> {
        let bad = |m: String| Error::golden(path, m);
        if head.len() < 10 || &head[..6] != MAGIC {
            return Err(bad("not a .npy file (missing the \\x93NUMPY magic)".into()));
        }
        let (header_len, start) = match head[6] {
            1 => (u16::from_le_bytes([head[8], head[9]]) as usize, 10usize),
            2 | 3 if head.len() >= 12 => {
                (u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as usize, 12)
            }
            v => return Err(bad(format!("unsupported .npy version {v}"))),
        };
        let header = head
            .get(start..start.saturating_add(header_len))
            .and_then(|h| std::str::from_utf8(h).ok())
            .ok_or_else(|| bad("truncated or non-UTF-8 .npy header".into()))?;
        if !header.contains("'descr': '<f4'") {
            return Err(bad(format!(
                "expected little-endian float32 data ('<f4'), header is {}",
                header.trim()
            )));
        }
        if header.contains("'fortran_order': True") {
            return Err(bad("Fortran-order arrays are not supported; save in C order".into()));
        }
        let shape = parse_shape(header)
            .ok_or_else(|| bad(format!("cannot read the shape in header {}", header.trim())))?;
        let data_offset = (start + header_len) as u64;
        let count = shape
            .iter()
            .try_fold(1u64, |n, &d| n.checked_mul(d as u64))
            .filter(|n| n.checked_mul(4).is_some())
            .ok_or_else(|| bad(format!("shape {shape:?} has more elements than any file can hold")))?;
        let data_len = file_len.saturating_sub(data_offset);
        if data_len != count * 4 {
            return Err(bad(format!(
                "shape {shape:?} needs {} data bytes, file has {data_len} (truncated?)",
                count * 4
            )));
        }
        Ok(Layout { shape, data_offset })
    }

    /// The layout of the `.npy` file at `path`, reading only its header.
    pub fn of_file(path: &Path) -> Result<Layout> {
        use std::io::Read;
        let file = crate::vocab::open_regular(path)?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let mut head = Vec::new();
        file.take(MAX_HEADER_BYTES as u64).read_to_end(&mut head).map_err(|e| Error::io(path, e))?;
        Layout::read(path, &head, len)
    }

    /// Elements of one row (one index of the first dimension).
    pub fn row_len(&self) -> usize {
        self.shape.iter().skip(1).product()
    }

    /// Row `i`, read from the file without reading the others.
    pub fn read_row(&self, path: &Path, i: usize) -> Result<Vec<f32>> {
        use std::os::unix::fs::FileExt;
        let file = crate::vocab::open_regular(path)?;
        let row_bytes = self.row_len() * 4;
        let mut bytes = vec![0u8; row_bytes];
        file.read_exact_at(&mut bytes, self.data_offset + (i * row_bytes) as u64)
            .map_err(|e| Error::io(path, e))?;
        Ok(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }
}

fn parse_shape(header: &str) -> Option<Vec<usize>> {
    let rest = &header[header.find("'shape':")? + 8..];
    let inner = &rest[rest.find('(')? + 1..rest.find(')')?];
    inner.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| s.parse().ok()).collect()
}

pub fn read(path: &Path) -> Result<ArrayD<f32>> {
    decode(path, &crate::vocab::read_bytes(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_aligns_data_to_64_bytes() {
        let a = ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![1.0, 2.0, 3.0, 4.0, 5.0, -6.5]).unwrap();
        let bytes = encode(&a);
        assert_eq!((bytes.len() - 24) % 64, 0);
        assert_eq!(decode(Path::new("x.npy"), &bytes).unwrap(), a);
    }

    #[test]
    fn one_dimensional_shapes_use_the_tuple_comma() {
        let a = ArrayD::from_shape_vec(IxDyn(&[3]), vec![1.0, 2.0, 3.0]).unwrap();
        let text = String::from_utf8_lossy(&encode(&a)).into_owned();
        assert!(text.contains("'shape': (3,)"));
        assert_eq!(decode(Path::new("x.npy"), &encode(&a)).unwrap(), a);
    }

    #[test]
    fn truncated_data_is_an_error_naming_the_sizes() {
        let a = ArrayD::from_shape_vec(IxDyn(&[4]), vec![0.0; 4]).unwrap();
        let bytes = encode(&a);
        let err = decode(Path::new("x.npy"), &bytes[..bytes.len() - 3]).unwrap_err().to_string();
        assert!(err.contains("x.npy") && err.contains("truncated"), "{err}");
    }

    #[test]
    fn rows_are_read_from_the_file_one_at_a_time() {
        let a = ArrayD::from_shape_vec(IxDyn(&[3, 2]), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.npy");
        std::fs::write(&path, encode(&a)).unwrap();
        let layout = Layout::of_file(&path).unwrap();
        assert_eq!(layout.shape, vec![3, 2]);
        assert_eq!(layout.read_row(&path, 2).unwrap(), vec![5.0, 6.0]);
    }

    #[test]
    fn a_shape_whose_element_count_overflows_is_an_error_not_a_panic() {
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16), }\n";
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        let err = decode(Path::new("big.npy"), &bytes).unwrap_err().to_string();
        assert!(err.contains("big.npy") && err.contains("more elements than any file can hold"), "{err}");
    }
}
