//! Running a model held in memory through edgecert's own engine seam.

use edgecert::engine::{default_engine, Tensor};
use edgecert::model::TensorInfo;
use rayon::prelude::*;
use tract_onnx::pb;

use edgecert::model::writer::encode;

/// Runs `model` on every input (in parallel) and returns each sample's outputs.
pub fn run_model(model: &pb::ModelProto, inputs: &[Tensor]) -> anyhow::Result<Vec<Vec<Tensor>>> {
    let dir = std::env::temp_dir().join(format!("edgecert-xtask-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("probe-{}.onnx", rand_suffix()));
    std::fs::write(&path, encode(model))?;
    let shape = inputs.first().map(|t| t.shape().to_vec()).unwrap_or_default();
    let info = TensorInfo { name: "input".into(), shape, dtype: "float32".into(), quantization: None };
    let loaded = default_engine().load(&path, &[info]);
    let _ = std::fs::remove_file(&path);
    let loaded = loaded?;
    Ok(inputs.par_iter().map(|x| loaded.run(std::slice::from_ref(x))).collect::<Result<_, _>>()?)
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}
