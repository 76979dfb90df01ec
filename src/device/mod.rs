//! What a Linux system says about itself, read under a root folder: `/` on a live system, or a
//! recorded copy of its `/proc` and `/sys` (tests, and users replaying a device's tree). The
//! agent reports these facts of its device and `certify` those of its host, so a certificate
//! names the kernel, board, CPU, frequency governor, clocks and NPU driver versions its figures
//! were measured under (ISO/IEC 17025 §7.8.3 a). A fact the system does not expose is absent,
//! never guessed. Every read is bounded: a recorded tree is hostile input like any other file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The most facts a device may report (agent or adapter), and the longest name or value of one.
pub const MAX_FACTS: usize = 128;
pub const MAX_FACT_BYTES: usize = 256;

/// The most bytes read of one system file.
const MAX_FILE_BYTES: u64 = 64 * 1024;
/// The most entries listed of one folder (CPU policies, devfreq devices).
const MAX_ENTRIES: usize = 256;

/// Kernel modules of NPU and GPU drivers whose `version` names the driver a figure ran on:
/// Rockchip's RKNPU, VeriSilicon's galcore (i.MX 8M Plus), Coral's gasket/apex, Hailo's PCIe
/// driver, Huawei's Ascend driver, Qualcomm's FastRPC and KGSL (Adreno), NVIDIA's nvgpu.
const DRIVER_MODULES: [&str; 9] =
    ["rknpu", "galcore", "apex", "gasket", "hailo_pci", "drv_davinci_intf", "fastrpc", "msm_kgsl", "nvgpu"];

/// Where a soak reads a device's thermal zones and clocks: this machine's `/sys` (or a tree),
/// or a device's agent over the network.
pub trait Sensors: Sync {
    /// One reading, `t_s` seconds into the soak (zones and clocks that could not be read are
    /// absent from it).
    fn sample(&self, t_s: f64) -> crate::vocab::ThermalSample;
    /// Where the readings come from, for the certificate.
    fn describe(&self) -> String;
}

impl Sensors for SystemRoot {
    fn sample(&self, t_s: f64) -> crate::vocab::ThermalSample {
        self.thermal_sample(t_s)
    }

    fn describe(&self) -> String {
        SystemRoot::describe(self)
    }
}

/// This machine's name (`/etc/hostname`), or `fallback` where it has none.
pub fn host_name(fallback: &str) -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| fallback.into())
}

/// A Linux system's files under `root`.
#[derive(Debug, Clone)]
pub struct SystemRoot {
    root: PathBuf,
}

impl SystemRoot {
    /// This machine.
    pub fn live() -> SystemRoot {
        SystemRoot { root: PathBuf::from("/") }
    }

    /// A recorded tree: `dir/proc/...`, `dir/sys/...`, `dir/etc/os-release`.
    pub fn at(dir: &Path) -> SystemRoot {
        SystemRoot { root: dir.to_path_buf() }
    }

    /// One system file's text, trimmed (device-tree strings lose their NULs), or `None` where it
    /// is absent, unreadable, not a regular file or empty.
    pub fn read(&self, path: &str) -> Option<String> {
        let full = self.root.join(path.trim_start_matches('/'));
        let bytes = crate::vocab::read_bounded(&full, MAX_FILE_BYTES, "a system file").ok()?;
        let text = String::from_utf8_lossy(&bytes).replace('\0', "");
        Some(text.trim().to_string()).filter(|t| !t.is_empty())
    }

    /// The names in a system folder, sorted, at most [`MAX_ENTRIES`].
    pub fn list(&self, dir: &str) -> Vec<String> {
        let full = self.root.join(dir.trim_start_matches('/'));
        let Ok(entries) = std::fs::read_dir(full) else { return Vec::new() };
        let mut names: Vec<String> =
            entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).take(MAX_ENTRIES).collect();
        names.sort();
        names
    }

    /// A number in a system file (kHz, Hz, millidegrees).
    pub fn number(&self, path: &str) -> Option<f64> {
        self.read(path)?.split_whitespace().next()?.parse().ok().filter(|v: &f64| v.is_finite())
    }

    /// The operating system's name (`/etc/os-release`'s PRETTY_NAME).
    pub fn os(&self) -> Option<String> {
        self.read("etc/os-release")?
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_string())
    }

    pub fn kernel(&self) -> Option<String> {
        self.read("proc/sys/kernel/osrelease")
    }

    /// The CPU model (x86's `model name`; on Arm boards the `Hardware` or `Model` line).
    pub fn cpu(&self) -> Option<String> {
        self.read("proc/cpuinfo")?
            .lines()
            .find(|l| l.starts_with("model name") || l.starts_with("Hardware") || l.starts_with("Model"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    }

    /// The board, as its device tree names it.
    pub fn board(&self) -> Option<String> {
        self.read("proc/device-tree/model").or_else(|| self.read("sys/firmware/devicetree/base/model"))
    }

    pub fn governor(&self) -> Option<String> {
        self.read("sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    }

    /// Each CPU cluster's clock (cpufreq policy) and each devfreq device's (NPU, GPU, memory), as
    /// "current MHz (max M MHz)", by name: `clock.cpu.policy0`, `clock.fdab0000.npu`.
    pub fn clocks(&self) -> BTreeMap<String, String> {
        let mhz = |khz: f64| format!("{:.0} MHz", khz / 1000.0);
        let mut clocks = BTreeMap::new();
        let cpufreq = "sys/devices/system/cpu/cpufreq";
        for policy in self.list(cpufreq).into_iter().filter(|p| p.starts_with("policy")) {
            let at = |f: &str| self.number(&format!("{cpufreq}/{policy}/{f}"));
            if let Some(cur) = at("scaling_cur_freq") {
                let max = at("scaling_max_freq").map_or(String::new(), |m| format!(" (max {})", mhz(m)));
                clocks.insert(format!("clock.cpu.{policy}"), format!("{}{max}", mhz(cur)));
            }
        }
        // devfreq counts in Hz, cpufreq in kHz.
        for device in self.list("sys/class/devfreq") {
            let at = |f: &str| self.number(&format!("sys/class/devfreq/{device}/{f}"));
            if let Some(cur) = at("cur_freq") {
                let max = at("max_freq").map_or(String::new(), |m| format!(" (max {})", mhz(m / 1000.0)));
                clocks.insert(format!("clock.{device}"), format!("{}{max}", mhz(cur / 1000.0)));
            }
        }
        clocks
    }

    /// Each thermal zone's temperature (°C) by its type (`soc-thermal`); a repeated type gets
    /// its zone's number (`gpu-thermal#5`). The kernel counts millidegrees.
    pub fn thermal_zones_c(&self) -> BTreeMap<String, f64> {
        self.thermal_zones().0
    }

    /// The zones as [`SystemRoot::thermal_zones_c`] reads them, and each zone that could not be
    /// read, named with why.
    pub fn thermal_zones(&self) -> (BTreeMap<String, f64>, Vec<String>) {
        let (mut zones, mut unreadable) = (BTreeMap::new(), Vec::new());
        for zone in self.list("sys/class/thermal").into_iter().filter(|z| z.starts_with("thermal_zone")) {
            let at = format!("sys/class/thermal/{zone}");
            let Some(text) = self.read(&format!("{at}/temp")) else {
                unreadable.push(format!("{at}/temp: absent, unreadable or empty"));
                continue;
            };
            let Some(milli) =
                text.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()).filter(|v| v.is_finite())
            else {
                let shown: String = text.chars().take(32).collect();
                unreadable.push(format!("{at}/temp: `{shown}` is not millidegrees"));
                continue;
            };
            let kind = self.read(&format!("{at}/type")).unwrap_or_else(|| zone.clone());
            let name = match zones.contains_key(&kind) {
                true => format!("{kind}#{}", zone.trim_start_matches("thermal_zone")),
                false => kind,
            };
            zones.insert(name, milli / 1000.0);
        }
        (zones, unreadable)
    }

    /// Each clock in MHz: CPU clusters (`cpu.policy4`) and devfreq devices (`fdab0000.npu`).
    pub fn clocks_mhz(&self) -> BTreeMap<String, f64> {
        let mut clocks = BTreeMap::new();
        let cpufreq = "sys/devices/system/cpu/cpufreq";
        for policy in self.list(cpufreq).into_iter().filter(|p| p.starts_with("policy")) {
            if let Some(khz) = self.number(&format!("{cpufreq}/{policy}/scaling_cur_freq")) {
                clocks.insert(format!("cpu.{policy}"), khz / 1000.0);
            }
        }
        for device in self.list("sys/class/devfreq") {
            if let Some(hz) = self.number(&format!("sys/class/devfreq/{device}/cur_freq")) {
                clocks.insert(device, hz / 1e6);
            }
        }
        clocks
    }

    /// One reading of the sensors, `t_s` seconds into a soak.
    pub fn thermal_sample(&self, t_s: f64) -> crate::vocab::ThermalSample {
        let (zones_c, unreadable) = self.thermal_zones();
        crate::vocab::ThermalSample { t_s, zones_c, clocks_mhz: self.clocks_mhz(), unreadable }
    }

    /// Where the sensors are read, for the certificate.
    pub fn describe(&self) -> String {
        match self.root == Path::new("/") {
            true => "this machine's /sys".into(),
            false => format!("the tree under {}", self.root.display()),
        }
    }

    /// The version of each loaded NPU or GPU driver module that states one: `driver.rknpu`.
    pub fn drivers(&self) -> BTreeMap<String, String> {
        DRIVER_MODULES
            .iter()
            .filter_map(|m| Some((format!("driver.{m}"), self.read(&format!("sys/module/{m}/version"))?)))
            .collect()
    }

    /// Every fact above, by name, for a certificate's `environment.device.facts`.
    pub fn facts(&self) -> BTreeMap<String, String> {
        let named = [
            ("os", self.os()),
            ("kernel", self.kernel()),
            ("cpu", self.cpu()),
            ("board", self.board()),
            ("governor", self.governor()),
        ];
        let mut facts: BTreeMap<String, String> =
            named.into_iter().filter_map(|(k, v)| Some((k.to_string(), v?))).collect();
        facts.extend(self.clocks());
        facts.extend(self.drivers());
        facts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, path: &str, text: &str) {
        let full = root.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, text).unwrap();
    }

    #[test]
    fn a_recorded_rk3588_tree_gives_its_board_clocks_and_npu_driver() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "proc/device-tree/model", "Radxa ROCK 5B\0");
        write(root, "proc/sys/kernel/osrelease", "5.10.160-rockchip\n");
        write(root, "proc/cpuinfo", "processor\t: 0\nBogoMIPS\t: 48.00\nModel\t: Radxa ROCK 5B\n");
        write(root, "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", "schedutil\n");
        write(root, "sys/devices/system/cpu/cpufreq/policy4/scaling_cur_freq", "2256000\n");
        write(root, "sys/devices/system/cpu/cpufreq/policy4/scaling_max_freq", "2400000\n");
        write(root, "sys/class/devfreq/fdab0000.npu/cur_freq", "1000000000\n");
        write(root, "sys/module/rknpu/version", "0.9.6\n");
        let facts = SystemRoot::at(root).facts();
        assert_eq!(facts["board"], "Radxa ROCK 5B");
        assert_eq!(facts["kernel"], "5.10.160-rockchip");
        assert_eq!(facts["cpu"], "Radxa ROCK 5B");
        assert_eq!(facts["governor"], "schedutil");
        assert_eq!(facts["clock.cpu.policy4"], "2256 MHz (max 2400 MHz)");
        assert_eq!(facts["clock.fdab0000.npu"], "1000 MHz");
        assert_eq!(facts["driver.rknpu"], "0.9.6");
        assert!(!facts.contains_key("os"), "no os-release recorded: absent, not guessed");
    }

    #[test]
    fn the_recorded_rock5b_tree_gives_seven_zones_and_five_clocks() {
        let root = SystemRoot::at(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sysfs/rock5b"));
        let sample = root.thermal_sample(1.0);
        assert_eq!(sample.zones_c.len(), 7);
        assert_eq!(sample.zones_c["npu-thermal"], 41.6);
        assert_eq!(sample.hottest_c(), Some(42.5));
        assert_eq!(sample.clocks_mhz["cpu.policy4"], 2352.0);
        assert_eq!(sample.clocks_mhz["fdab0000.npu"], 1000.0);
        assert_eq!(sample.clocks_mhz.len(), 5);
    }

    #[test]
    fn a_zone_that_cannot_be_read_is_named_and_the_others_still_read() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "sys/class/thermal/thermal_zone0/type", "soc-thermal\n");
        write(dir.path(), "sys/class/thermal/thermal_zone0/temp", "41600\n");
        write(dir.path(), "sys/class/thermal/thermal_zone1/type", "npu-thermal\n");
        write(dir.path(), "sys/class/thermal/thermal_zone1/temp", "hot\n");
        std::fs::create_dir_all(dir.path().join("sys/class/thermal/thermal_zone2")).unwrap();
        let sample = SystemRoot::at(dir.path()).thermal_sample(0.0);
        assert_eq!(sample.zones_c.len(), 1);
        assert_eq!(
            sample.unreadable,
            [
                "sys/class/thermal/thermal_zone1/temp: `hot` is not millidegrees",
                "sys/class/thermal/thermal_zone2/temp: absent, unreadable or empty",
            ]
        );
    }

    #[test]
    fn an_empty_or_hostile_tree_gives_no_facts() {
        let dir = tempfile::tempdir().unwrap();
        assert!(SystemRoot::at(dir.path()).facts().is_empty());
        // A clock that is not a number, and a folder where a file belongs, are left out.
        write(dir.path(), "sys/class/devfreq/gpu/cur_freq", "fast\n");
        std::fs::create_dir_all(dir.path().join("proc/sys/kernel/osrelease")).unwrap();
        assert!(SystemRoot::at(dir.path()).facts().is_empty());
    }
}
