//! The inputs of a certification run, loaded and validated before anything runs: chip profiles
//! (in the requested NPU mode), golden sets with the models they certify, and the rule that
//! names are unique (two profiles or two golden sets of one name would write one report path).
//! Bad input stops here with exit code 2.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::plan::{PlannedFamily, PlannedInput};
use crate::golden::{self, GoldenSet};
use crate::model::{InputQuantization, InputShapes, ModelInventory, QuantizationSource};
use crate::profile::{self, ProfileFile};
use crate::vocab::{Error, Result};

/// Where the inputs come from (recorded by sample shards, so `merge` can load them again).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// Profile files; empty: every profile in `profiles_dir`.
    pub profiles: Vec<PathBuf>,
    pub profiles_dir: PathBuf,
    /// Golden-set folders; empty: every family under `golden_dir`.
    pub golden: Vec<PathBuf>,
    pub golden_dir: PathBuf,
    /// A compressed model to certify instead of each golden set's own.
    pub model: Option<PathBuf>,
    /// NPU compute mode applied to every profile that lists it.
    pub npu_mode: Option<String>,
    /// Shapes for symbolic model inputs (`--input-shape`); each golden set's `input.shape`
    /// fixes what these leave open.
    pub input_shapes: InputShapes,
}

/// One golden set with the models it certifies.
pub struct Family {
    pub golden: GoldenSet,
    pub reference: ModelInventory,
    pub compressed: ModelInventory,
}

impl Family {
    pub(super) fn planned(&self) -> PlannedFamily {
        let input = |name: &str, path: &Path, sha256: &str| PlannedInput {
            name: name.to_string(),
            path: path.display().to_string(),
            sha256: sha256.to_string(),
        };
        PlannedFamily {
            golden: input(self.golden.name(), &self.golden.dir, &self.golden.sha256),
            model: input("compressed", &self.compressed.path, &self.compressed.sha256),
            reference: input("reference", &self.reference.path, &self.reference.sha256),
        }
    }
}

/// Everything a run reads, validated.
pub struct Inputs {
    pub families: Vec<Family>,
    pub profiles: Vec<ProfileFile>,
    /// The NPU mode each profile (same index) was switched into, if any.
    pub npu_modes: Vec<Option<String>>,
}

impl Inputs {
    /// The formats of the run's compressed models, and of its references too with
    /// `with_references`, each once.
    pub fn model_formats(&self, with_references: bool) -> Vec<crate::model::ModelFormat> {
        let mut formats: Vec<_> = self
            .families
            .iter()
            .flat_map(|f| [Some(f.compressed.format), with_references.then_some(f.reference.format)])
            .flatten()
            .collect();
        formats.sort_by_key(|f| *f as u8);
        formats.dedup();
        formats
    }

    pub fn load(spec: &InputSpec) -> Result<Inputs> {
        let profiles = if spec.profiles.is_empty() {
            profile::load_dir(&spec.profiles_dir)?
        } else {
            spec.profiles.iter().map(|p| profile::ChipProfile::load(p)).collect::<Result<_>>()?
        };
        unique_names(
            "chip profiles",
            "chip.name",
            profiles.iter().map(|p| (p.profile.chip.name.as_str(), p.path.as_path())),
        )?;
        let (profiles, npu_modes) = apply_mode(profiles, spec.npu_mode.as_deref())?;
        let golden_dirs =
            if spec.golden.is_empty() { golden::discover(&spec.golden_dir)? } else { spec.golden.clone() };
        let families = golden_dirs
            .iter()
            .map(|d| load_family(d, spec.model.as_deref(), &spec.input_shapes))
            .collect::<Result<Vec<_>>>()?;
        unique_names(
            "golden sets",
            "family.name",
            families.iter().map(|f| (f.golden.name(), f.golden.manifest_path.as_path())),
        )?;
        Ok(Inputs { families, profiles, npu_modes })
    }
}

/// Two inputs of one kind with the same name would certify under, and write, the same path.
fn unique_names<'a>(what: &str, field: &str, named: impl Iterator<Item = (&'a str, &'a Path)>) -> Result<()> {
    let mut seen: BTreeMap<&str, &Path> = BTreeMap::new();
    for (name, path) in named {
        if let Some(first) = seen.insert(name, path) {
            return Err(Error::Usage(format!(
                "two {what} are named `{name}` ({field}): {} and {}; names must be unique, since reports are written under them",
                first.display(),
                path.display()
            )));
        }
    }
    Ok(())
}

/// Switches every profile that lists `mode` into it, saying which did; a mode no profile lists
/// is a usage error.
pub(super) fn apply_mode(
    profiles: Vec<ProfileFile>,
    mode: Option<&str>,
) -> Result<(Vec<ProfileFile>, Vec<Option<String>>)> {
    let Some(name) = mode else {
        let none = vec![None; profiles.len()];
        return Ok((profiles, none));
    };
    if !profiles.iter().any(|p| p.profile.in_mode(name).is_some()) {
        return Err(Error::Usage(format!("no selected profile has an NPU mode `{name}` (npu.modes)")));
    }
    Ok(profiles
        .into_iter()
        .map(|mut p| match p.profile.in_mode(name) {
            Some(m) => {
                p.profile = m;
                (p, Some(name.to_string()))
            }
            None => (p, None),
        })
        .unzip())
}

/// A golden set and its models, whose symbolic input dimensions the set's `input.shape` fixes
/// (the samples are what the models will be fed). `--input-shape` speaks for the model under
/// certification only; the reference is the golden set's own.
pub fn load_family(dir: &Path, model_override: Option<&Path>, shapes: &InputShapes) -> Result<Family> {
    let golden = GoldenSet::load(dir)?;
    let sample = &golden.manifest.input.shape;
    let mut reference =
        ModelInventory::load_with(&golden.reference_model(), &InputShapes::default().with_default(sample))?;
    let compressed_path = model_override.map(Path::to_path_buf).unwrap_or_else(|| golden.compressed_model());
    let mut compressed = ModelInventory::load_with(&compressed_path, &shapes.with_default(sample))?;
    let stated = golden
        .manifest
        .input
        .quantization
        .map(|q| InputQuantization { source: QuantizationSource::GoldenSet, ..q });
    for model in [&mut reference, &mut compressed] {
        check_input_shape(&golden, model)?;
        model.resolve_input_feeds(stated, &golden.manifest_path)?;
    }
    Ok(Family { golden, reference, compressed })
}

/// The golden samples must have the shape the model takes.
fn check_input_shape(golden: &GoldenSet, model: &ModelInventory) -> Result<()> {
    let want = &golden.manifest.input.shape;
    match model.inputs.as_slice() {
        [only] if &only.shape == want => Ok(()),
        [only] => Err(Error::golden(
            &golden.manifest_path,
            format!(
                "input.shape is {want:?} but model {} takes `{}` of shape {:?}",
                model.path.display(),
                only.name,
                only.shape
            ),
        )),
        inputs => Err(Error::model(
            &model.path,
            format!("edgecert replays single-input models; this one has {} inputs", inputs.len()),
        )),
    }
}
