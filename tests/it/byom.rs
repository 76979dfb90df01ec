//! Bring your own model: a model pair and a folder of images become a golden set and a
//! certificate with an accuracy verdict, with no code; foreign golden sets get clear errors.

use crate::common;

use std::path::{Path, PathBuf};

use common::*;
use edgecert::model::writer::encode;
use prost::Message;
use tract_onnx::pb;
use tract_onnx::pb::tensor_proto::DataType;

/// `n` 32×32 grey images of filled discs and squares at varying places and sizes, written as
/// PNG: the kind of sample folder a user brings.
fn image_folder(dir: &Path, n: usize) -> PathBuf {
    let folder = dir.join("images");
    std::fs::create_dir_all(&folder).unwrap();
    let mut rng = edgecert::stats::SplitMix64::new(7);
    for i in 0..n {
        let (cx, cy, r) = (8 + rng.below(16), 8 + rng.below(16), 4 + rng.below(5));
        let disc = i % 2 == 0;
        let pixel = |x: usize, y: usize| {
            let (dx, dy) = (x as i64 - cx as i64, y as i64 - cy as i64);
            let inside = if disc {
                dx * dx + dy * dy <= (r * r) as i64
            } else {
                dx.abs() <= r as i64 && dy.abs() <= r as i64
            };
            if inside {
                230
            } else {
                20 + (rng_noise(x as u32, y as u32, i) % 30) as u8
            }
        };
        let pixels: Vec<u8> = (0..32).flat_map(|y| (0..32).map(move |x| pixel(x, y))).collect();
        std::fs::write(folder.join(format!("sample_{i:03}.png")), encode_png(32, 32, 1, &pixels)).unwrap();
    }
    folder
}

fn rng_noise(x: u32, y: u32, i: usize) -> u64 {
    edgecert::stats::SplitMix64::new((x as u64) << 32 | (y as u64) << 16 | i as u64).next_u64()
}

/// The shapes pair stands in for a third-party FP32 model and its int8 export.
fn models() -> (PathBuf, PathBuf) {
    (root().join("golden/shapes/shapes_fp32.onnx"), root().join("golden/shapes/shapes_int8.onnx"))
}

fn init(dir: &Path, golden: &Path, images: &Path, compressed: &Path, extra: &[&str]) -> Run {
    let (fp32, _) = models();
    let mut args = vec![
        "golden",
        "init",
        s(golden),
        "--reference",
        s(&fp32),
        "--compressed",
        s(compressed),
        "--inputs",
        s(images),
    ];
    args.extend_from_slice(extra);
    let _ = dir;
    edgecert(&args)
}

/// The README walkthrough: `golden init`, `certify`, `show`, `analyze`.
#[test]
fn a_model_pair_and_a_folder_of_images_become_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let images = image_folder(dir.path(), 80);
    let golden = dir.path().join("my-classifier");
    let run = init(dir.path(), &golden, &images, &models().1, &["--latency-p99-ms", "5"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("golden set `my-classifier` written"), "{}", run.stdout);
    assert!(
        run.stdout.contains(&format!("next: edgecert certify --golden {}", golden.display())),
        "{}",
        run.stdout
    );
    let manifest = std::fs::read_to_string(golden.join("family.toml")).unwrap();
    assert!(
        manifest.contains("kind = \"output_agreement\"") && manifest.contains("samples = 80"),
        "{manifest}"
    );

    let out = dir.path().join("reports");
    let run =
        edgecert(&["certify", "--golden", s(&golden), "--profile", "profiles/rk3588.toml", "--out", s(&out)]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stdout.contains("check my-classifier::rk3588::output_agreement ... "), "{}", run.stdout);
    let cert = certificate(&out, "my-classifier", "rk3588");
    let agreement = check(&cert, "output_agreement");
    assert_eq!(agreement["basis"], "measured");
    let findings = agreement["findings"].to_string();
    assert!(findings.contains("cosine similarity") && findings.contains("PASS"), "{agreement}");
    let stats = &cert["agreement"][0]["statistics"];
    let cosine = stats.as_array().unwrap().iter().find(|s| s["statistic"] == "cosine").unwrap();
    assert!(cosine["value"].as_f64().unwrap() > 0.99, "{cosine}");
    assert_eq!(cert["agreement"][0]["samples"], 80);
    assert!(cert["coverage"]["planned"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| !c.as_str().unwrap().starts_with("accuracy")));

    let shown = edgecert(&["show", s(&out.join("my-classifier/rk3588/certificate.json"))]);
    assert_eq!(shown.code, if cert["verdict"] == "PASS" { 0 } else { 1 }, "{}", shown.stderr);
    let row = |text: &str| {
        text.lines().find(|l| l.starts_with('│') && l.contains("output_agreement")).map(str::to_string)
    };
    assert_eq!(row(&shown.stdout), row(&run.stdout), "show prints the row the run printed");
    let verified =
        edgecert(&["verify", "--recompute", s(&out.join("my-classifier/rk3588/certificate.json"))]);
    assert_eq!(verified.code, 0, "{}\n{}", verified.stdout, verified.stderr);
    for line in ["ok: check output_agreement: ", "ok: every agreement value and interval reproduced"] {
        assert!(verified.stdout.contains(line), "missing `{line}`: {}", verified.stdout);
    }

    let analysis = edgecert(&["analyze", "--golden", s(&golden), "--json"]);
    assert_eq!(analysis.code, 0, "{}", analysis.stderr);
    let report: serde_json::Value = serde_json::from_str(&analysis.stdout).unwrap();
    assert_eq!(report["samples"], 80);
    assert!(report["layers"].as_array().unwrap().len() >= 5, "{report}");
}

#[test]
fn scrambled_weights_fail_output_agreement_naming_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let images = image_folder(dir.path(), 40);
    let bytes = std::fs::read(models().1).unwrap();
    let mut model = pb::ModelProto::decode(bytes.as_slice()).unwrap();
    for t in &mut model.graph.as_mut().unwrap().initializer {
        if t.data_type == DataType::Int8 as i32 && t.raw_data.len() > 16 {
            t.raw_data.reverse();
        }
    }
    let scrambled = dir.path().join("scrambled_int8.onnx");
    std::fs::write(&scrambled, encode(&model)).unwrap();
    let golden = dir.path().join("scrambled");
    assert_eq!(init(dir.path(), &golden, &images, &scrambled, &[]).code, 0);
    let out = dir.path().join("out");
    let run = certify_quietly(&out, "profiles/rk3588.toml", s(&golden), &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let cert = certificate(&out, "scrambled", "rk3588");
    let c = check(&cert, "output_agreement");
    assert_eq!(c["verdict"], "FAIL", "{c}");
    assert!(c["reason"].as_str().unwrap().contains("output `gemm_23`"), "{c}");
    assert_eq!(cert["verdict"], "FAIL");
}

#[test]
fn golden_init_refuses_what_it_cannot_use() {
    let dir = tempfile::tempdir().unwrap();
    let images = image_folder(dir.path(), 4);
    let taken = dir.path().join("taken");
    std::fs::create_dir_all(&taken).unwrap();
    std::fs::write(taken.join("x"), "x").unwrap();
    let run = init(dir.path(), &taken, &images, &models().1, &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("already exists and is not empty"), "{}", run.stderr);

    let run =
        init(dir.path(), &dir.path().join("a"), &images, &models().1, &["--input-shape", "pixels:1x1x32x32"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("--input-shape names `pixels`") && run.stderr.contains("takes `input`"),
        "{}",
        run.stderr
    );

    let run =
        init(dir.path(), &dir.path().join("b"), &images, &models().1, &["--input-shape", "input:1x1x32"]);
    assert_eq!(run.code, 2, "a sample shape the images cannot fill: {}", run.stderr);
    assert!(
        run.stderr.contains("has 3 dimensions but input `input` is declared with 4")
            && !run.stderr.contains(".init-"),
        "{}",
        run.stderr
    );

    let run =
        init(dir.path(), &dir.path().join("c"), &images, &models().1, &["--input-shape", "input:1xAx32x32"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("positive integers joined by `x`"), "{}", run.stderr);

    std::fs::write(images.join("notes.txt"), "not an image").unwrap();
    let run = init(dir.path(), &dir.path().join("d"), &images, &models().1, &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("notes.txt") && run.stderr.contains("not a sample"), "{}", run.stderr);
    for name in ["a", "b", "c", "d"] {
        assert!(!dir.path().join(name).exists(), "{name}: nothing is left behind by a failed init");
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".init-"))
        .collect();
    assert!(leftovers.is_empty());
}

/// A hand-made golden set copied from a generated one, for corrupting.
fn made_golden(dir: &Path) -> PathBuf {
    let images = image_folder(dir, 12);
    let golden = dir.join("handmade");
    assert_eq!(init(dir, &golden, &images, &models().1, &[]).code, 0);
    golden
}

fn certify_rejects(golden: &Path, words: &[&str]) {
    let out = golden.parent().unwrap().join("out");
    let run =
        edgecert(&["certify", "--golden", s(golden), "--profile", "profiles/rk3588.toml", "--out", s(&out)]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    for w in words {
        assert!(run.stderr.contains(w), "error should mention `{w}`: {}", run.stderr);
    }
    assert!(files_under(&out).is_empty());
}

#[test]
fn foreign_golden_sets_get_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let golden = made_golden(dir.path());
    let samples = golden.join("samples");

    std::fs::write(samples.join("README.md"), "about these samples").unwrap();
    certify_rejects(&golden, &["README.md", "not a sample", "png"]);
    std::fs::remove_file(samples.join("README.md")).unwrap();

    std::fs::create_dir(samples.join("more")).unwrap();
    certify_rejects(&golden, &["more", "a folder"]);
    std::fs::remove_dir(samples.join("more")).unwrap();

    let first = samples.join("sample_000.png");
    let original = std::fs::read(&first).unwrap();
    std::fs::write(&first, b"\x89PNG\r\n\x1a\n broken").unwrap();
    certify_rejects(&golden, &["sample_000.png", "not a readable PNG or JPEG image"]);
    std::fs::write(&first, original).unwrap();

    // Labels are optional, but a label file must have one row per sample.
    let labels = ndarray::ArrayD::<f32>::zeros(ndarray::IxDyn(&[5]));
    std::fs::write(golden.join("labels.npy"), edgecert::golden::npy::encode(&labels)).unwrap();
    let manifest = golden.join("family.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("[metric]", "[labels]\npath = \"labels.npy\"\n\n[metric]"))
        .unwrap();
    certify_rejects(&golden, &["labels.npy", "5 label rows for 12 input samples"]);
    std::fs::write(&manifest, text.replace("name = \"handmade\"", "name = \"../../escape\"")).unwrap();
    certify_rejects(&golden, &["family.toml", "family.name", "short identifier"]);
}

#[test]
fn a_changed_sample_names_the_command_that_records_the_new_digest() {
    let dir = tempfile::tempdir().unwrap();
    let golden = made_golden(dir.path());
    std::fs::write(golden.join("samples/sample_000.png"), encode_png(32, 32, 1, &[128; 32 * 32])).unwrap();
    certify_rejects(&golden, &["family.toml", &format!("edgecert golden rehash {}", golden.display())]);
    let run = edgecert(&["golden", "rehash", s(&golden)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("dataset.sha256 = "), "{}", run.stdout);
    let text = std::fs::read_to_string(golden.join("family.toml")).unwrap();
    assert!(text.contains("# Written by `edgecert golden init`"), "comments survive a rehash: {text}");
    let out = dir.path().join("out2");
    let run = certify_quietly(&out, "profiles/rk3588.toml", s(&golden), &[]);
    assert_eq!(run.code, 1, "certifies again after the rehash: {}", run.stderr);
    // Twelve samples are too few to judge agreement: the check asks for more instead of deciding.
    let agreement = check(&certificate(&out, "handmade", "rk3588"), "output_agreement").clone();
    assert_eq!(agreement["verdict"], "INCONCLUSIVE", "{agreement}");
    assert!(
        agreement["reason"]
            .as_str()
            .unwrap()
            .contains("12 golden samples; output agreement is judged on at least 20"),
        "{agreement}"
    );
}

#[test]
fn analyze_ranks_the_layers_of_the_smt_micro_slice() {
    let run = edgecert(&["analyze", "--golden", "golden/smt", "--slice", "micro", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["slice"], "micro");
    let layers = report["layers"].as_array().unwrap();
    assert!(layers.len() >= 10, "{report}");
    let cosines: Vec<f64> = layers.iter().map(|l| l["cosine"].as_f64().unwrap()).collect();
    assert!(cosines.windows(2).all(|w| w[0] <= w[1]), "worst first: {cosines:?}");
    assert!(cosines[0] < 0.999 && *cosines.last().unwrap() > 0.9999, "{cosines:?}");
    // What the README says of this slice: the convolutions stay above 0.9998, the drift enters
    // at the read-out, and the final Gemm loses the most.
    assert_eq!(layers[0]["op_type"], "Gemm", "{}", layers[0]);
    assert!(layers[0]["cosine_lost_here"].as_f64().unwrap() > 0.01, "{}", layers[0]);
    for conv in layers.iter().filter(|l| l["op_type"] == "Conv") {
        assert!(conv["cosine"].as_f64().unwrap() > 0.9998, "{conv}");
    }
    // The micro slice is the samples flagged micro in the labels, not the whole set.
    assert!(report["samples"].as_u64().unwrap() < 2000);
    let bad = edgecert(&["analyze", "--golden", "golden/smt", "--slice", "tiny"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("no sample slice `tiny`"), "{}", bad.stderr);
}

#[test]
fn a_model_that_takes_another_dtype_than_the_samples_is_refused() {
    use edgecert::model::writer::{value_info, Attr, Graph};
    let dir = tempfile::tempdir().unwrap();
    let mut g = Graph::default();
    g.inputs.push(value_info("input", DataType::Uint8, Some(&[1, 1, 32, 32])));
    let x = g.node("Cast", &["input"], vec![("to", Attr::Int(DataType::Float as i64))]);
    g.node_named("Flatten", &[&x], "scores", vec![]);
    g.output("scores", Some(&[1, 1024]));
    let model = dir.path().join("uint8_input.onnx");
    std::fs::write(&model, encode(&g.into_model("edgecert-test"))).unwrap();
    let out = dir.path().join("out");
    let run = certify_quietly(&out, "profiles/rk3588.toml", "golden/shapes", &["--model", s(&model)]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("uint8_input.onnx") && run.stderr.contains("input `input` is uint8"),
        "{}",
        run.stderr
    );
    assert!(files_under(&out).is_empty());
}

/// `golden/shapes/shapes_int8.onnx` taking int8 codes instead of floats: its first
/// QuantizeLinear removed, so the DequantizeLinear behind it reads the graph input directly, the
/// way converters export a model that takes quantized images.
fn int8_input_shapes_model() -> pb::ModelProto {
    let bytes = std::fs::read(root().join("golden/shapes/shapes_int8.onnx")).unwrap();
    let mut m = pb::ModelProto::decode(bytes.as_slice()).unwrap();
    let g = m.graph.as_mut().unwrap();
    let quantize = g.node.remove(0);
    assert_eq!((quantize.op_type.as_str(), quantize.input[0].as_str()), ("QuantizeLinear", "input"));
    for node in &mut g.node {
        for input in &mut node.input {
            if *input == quantize.output[0] {
                *input = "input".into();
            }
        }
    }
    let Some(pb::type_proto::Value::TensorType(t)) = g.input[0].r#type.as_mut().unwrap().value.as_mut()
    else {
        panic!("a tensor input")
    };
    t.elem_type = DataType::Int8 as i32;
    m
}

/// An int8-input model is fed the golden samples' codes under its own scale and zero point
/// (1/255 and −128, read from its DequantizeLinear): its accuracy is, to the last digit, that of
/// the same graph quantizing float inputs itself, and the certificate records the coding. A
/// golden set that states another coding is refused, as is an integer input nothing describes.
#[test]
fn an_int8_input_model_is_fed_codes_under_its_own_quantization() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("shapes_int8_input.onnx");
    std::fs::write(&model, encode(&int8_input_shapes_model())).unwrap();
    let certify = |out: &str, golden: &Path, model: &Path| {
        let out = dir.path().join(out);
        (certify_quietly(&out, "profiles/rk3588.toml", s(golden), &["--model", s(model)]), out)
    };
    let shapes = root().join("golden/shapes");
    let (run, out) = certify("coded", &shapes, &model);
    assert!(run.code <= 1, "{}", run.stderr);
    let coded = certificate(&out, "shapes", "rk3588");
    let (run, out) = certify("float", &shapes, &root().join("golden/shapes/shapes_int8.onnx"));
    assert!(run.code <= 1, "{}", run.stderr);
    let float = certificate(&out, "shapes", "rk3588");
    assert_eq!(check(&coded, "accuracy")["measured"], check(&float, "accuracy")["measured"]);
    assert_eq!(check(&coded, "accuracy")["verdict"], "PASS");
    assert_eq!(
        coded["subject"]["input_quantization"],
        serde_json::json!([{"input": "input", "dtype": "int8", "scale": 0.003921569, "zero_point": -128, "source": "model"}])
    );
    assert!(float["subject"].get("input_quantization").is_none(), "a float input has no coding");

    // A golden set stating another coding contradicts the model: refused, naming both.
    let golden = copied_golden(dir.path(), "shapes");
    let manifest = golden.join("family.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let stated = text.replacen("[input]\n", "[input]\nquantization = { scale = 1.0, zero_point = 0 }\n", 1);
    std::fs::write(&manifest, stated).unwrap();
    let (run, out) = certify("contradicted", &golden, &model);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("family.toml") && run.stderr.contains("make it agree"), "{}", run.stderr);
    assert!(files_under(&out).is_empty());

    // An int8 input no DequantizeLinear reads, and no coding stated: refused with the way out.
    let mut bare = int8_input_shapes_model();
    bare.graph.as_mut().unwrap().node[0].op_type = "Cast".into();
    bare.graph.as_mut().unwrap().node[0].input.truncate(1);
    bare.graph.as_mut().unwrap().node[0].attribute.push(pb::AttributeProto {
        name: "to".into(),
        r#type: pb::attribute_proto::AttributeType::Int as i32,
        i: DataType::Float as i64,
        ..Default::default()
    });
    let bare_path = dir.path().join("cast_input.onnx");
    std::fs::write(&bare_path, encode(&bare)).unwrap();
    let (run, _) = certify("undescribed", &shapes, &bare_path);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("input `input` is int8 and nothing says how golden samples become its codes")
            && run.stderr.contains("[input.quantization]"),
        "{}",
        run.stderr
    );
}
