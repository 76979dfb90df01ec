//! The corpus's networks, rebuilt (`cargo xtask corpus-networks`): `xtask/corpus_networks.py`
//! writes each (architecture, input size) of `fidelity/measurements.csv` as TFLite files with
//! TensorFlow's converter (random weights, int8 full-integer and float), and edgecert's own
//! TFLite reader inventories them into `fidelity/networks/<name>.json`. The emulator needs only
//! the inventory, so CI needs neither TensorFlow nor the multi-megabyte models.

use std::path::PathBuf;

use edgecert::model::ModelInventory;

use crate::corpus::Measurement;

fn networks_dir() -> PathBuf {
    crate::repo_root().join("fidelity/networks")
}

/// Builds the networks named (all the script knows without names) into `target/corpus-networks`
/// and writes each file's inventory beside the corpus.
pub fn write(names: &[String]) -> anyhow::Result<()> {
    let build = crate::repo_root().join("target/corpus-networks");
    let script = crate::repo_root().join("xtask/corpus_networks.py");
    let status = std::process::Command::new("python3").arg(&script).arg(&build).args(names).status()?;
    anyhow::ensure!(
        status.success(),
        "{} failed ({status}): it needs tensorflow-cpu (pip install tensorflow-cpu)",
        script.display()
    );
    let out = networks_dir();
    std::fs::create_dir_all(&out)?;
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&build)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    files.retain(|p| p.extension().is_some_and(|e| e == "tflite"));
    files.sort();
    for file in files {
        let mut inventory = ModelInventory::load(&file)?;
        let name = file.file_stem().expect("a file name").to_string_lossy().into_owned();
        inventory.path = PathBuf::from(file.file_name().expect("a file name"));
        let json = serde_json::to_string(&inventory)?;
        std::fs::write(out.join(format!("{name}.json")), json + "\n")?;
        let gmacs = inventory.total_macs.map_or("?".into(), |m| format!("{:.2}", m as f64 / 1e9));
        println!("{name}: {gmacs} GMACs, {} nodes", inventory.nodes.len());
    }
    Ok(())
}

/// The kept inventory of network `name` (`resnet50_224x224_int8`), if it was rebuilt.
pub fn inventory(name: &str) -> anyhow::Result<Option<ModelInventory>> {
    let path = networks_dir().join(format!("{name}.json"));
    if !path.is_file() {
        return Ok(None);
    }
    Ok(Some(serde_json::from_str(&std::fs::read_to_string(&path)?)?))
}

/// The rebuilt network a row measures, `<architecture>_<H>x<W>_<int8|fp32>`, or why the row
/// cannot be scored: no standard architecture, a shape that is not one NCHW image, or a
/// precision the emulator does not model (16-bit activations).
pub fn network_for(m: &Measurement) -> Result<String, String> {
    if m.architecture.is_empty() {
        return Err("not a standard architecture".into());
    }
    let dims: Vec<&str> = m.input_shape.split('x').collect();
    let [_, "3", h, w] = dims.as_slice() else {
        return Err(format!("input `{}` is not one 3-channel NCHW image", m.input_shape));
    };
    let variant = match (m.precision.as_str(), m.chip.as_str()) {
        ("int8" | "uint8" | "w8a8", _) => "int8",
        // Coral's table: every model is 8-bit quantized (the Edge TPU runs nothing else).
        ("", "edgetpu" | "coral-usb") => "int8",
        ("fp16" | "fp32", _) => "fp32",
        ("", _) => return Err("the source states no precision".into()),
        (p, _) => return Err(format!("precision `{p}`: the emulator models 8-bit or float activations")),
    };
    Ok(format!("{}_{h}x{w}_{variant}", m.architecture))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(architecture: &str, shape: &str, precision: &str, chip: &str) -> Measurement {
        let csv = format!(
            "{chip},m,{architecture},{shape},{precision},tflite,latency,1,2.0,ms,NPU,,,a/b:c,{},",
            "0".repeat(40)
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.csv");
        std::fs::write(&path, format!("{}\n{csv}\n", crate::corpus::COLUMNS.join(","))).unwrap();
        crate::corpus::load(&path).unwrap().remove(0)
    }

    #[test]
    fn a_row_names_its_rebuilt_network_or_why_it_has_none() {
        assert_eq!(
            network_for(&row("resnet50", "1x3x224x224", "w8a8", "qcs6490")),
            Ok("resnet50_224x224_int8".into())
        );
        assert_eq!(
            network_for(&row("mobilenet_v2", "1x3x224x224", "", "edgetpu")),
            Ok("mobilenet_v2_224x224_int8".into())
        );
        assert_eq!(
            network_for(&row("resnet50", "1x3x224x224", "fp16", "ascend310b")),
            Ok("resnet50_224x224_fp32".into())
        );
        let why = |r: Measurement| network_for(&r).unwrap_err();
        assert!(why(row("", "1x3x224x224", "int8", "hailo8")).contains("not a standard architecture"));
        assert!(why(row("resnet50", "1x3x224x224", "", "ascend310b")).contains("states no precision"));
        assert!(why(row("resnet50", "1x3x224x224", "w8a16", "qcs6490")).contains("precision `w8a16`"));
        assert!(why(row("yamnet", "1x1x96x64", "int8", "qcs6490")).contains("not one 3-channel NCHW image"));
    }
}
