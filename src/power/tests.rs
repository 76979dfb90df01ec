//! Traces integrate as a hand calculation does; meters and logs parse what real meters print
//! and name what they cannot.

use super::*;
use crate::vocab::MeteredWindow;

fn trace(points: &[(f64, f64)]) -> PowerTrace {
    PowerTrace { source: "test".into(), points: points.to_vec() }
}

#[test]
fn energy_is_the_trapezoid_rule_with_interpolated_edges() {
    // 2 W rising to 4 W over a second, 4 W for a second, back to 2 W: 3 + 4 + 3 = 10 J.
    let t = trace(&[(0.0, 2.0), (1.0, 4.0), (2.0, 4.0), (3.0, 2.0)]);
    assert_eq!(t.energy_j(0.0, 3.0), Some(10.0));
    assert_eq!(t.average_w(0.0, 3.0), Some(10.0 / 3.0));
    // From 0.5 s (3 W interpolated) to 2.5 s (3 W): (3+4)/2·0.5 + 4 + (4+3)/2·0.5 = 7.5 J.
    assert_eq!(t.energy_j(0.5, 2.5), Some(7.5));
    assert_eq!(t.samples_in(0.5, 2.5), 2);
    assert_eq!(t.sample_rate_hz(), 1.0);
    // A window the trace does not cover has no energy.
    assert_eq!(t.energy_j(-1.0, 1.0), None);
    assert_eq!(t.energy_j(2.0, 4.0), None);
    let w = MeteredWindow { trace: t, from_s: 0.0, to_s: 3.0, inferences: 100 };
    assert_eq!(w.energy_per_inference_j(), Some(0.1));
}

#[test]
fn meter_specs_parse_and_bad_ones_say_what_is_expected() {
    assert_eq!("rapl".parse(), Ok(PowerMeter::Rapl(PathBuf::from(RAPL_DEFAULT))));
    assert_eq!("cmd:./meter --csv".parse(), Ok(PowerMeter::Command("./meter --csv".into())));
    assert_eq!("tegrastats".parse(), Ok(PowerMeter::Tegrastats(TEGRASTATS_DEFAULT.into())));
    for bad in ["cmd:", "ina219", ""] {
        let err = bad.parse::<PowerMeter>().unwrap_err();
        assert!(err.contains("expected rapl[:DIR], cmd:COMMAND"), "{bad}: {err}");
    }
}

#[test]
fn readings_parse_as_meters_print_them() {
    assert_eq!(parse_csv_line("4.25"), Some((None, 4.25)));
    assert_eq!(parse_csv_line("0.010, 4.25"), Some((Some(0.01), 4.25)));
    assert_eq!(parse_csv_line("0.010;4.25"), Some((Some(0.01), 4.25)));
    for bad in ["seconds,watts", "1,2,3", "-1", "NaN", "inf", "1,-2"] {
        assert_eq!(parse_csv_line(bad), None, "{bad}");
    }
    let orin = "11-29-2026 10:00:01 RAM 2436/7620MB (lfb 2x4MB) CPU [3%@729,1%@729] VDD_IN 4703mW/4703mW VDD_CPU_GPU_CV 479mW/479mW";
    assert_eq!(parse_tegrastats_line(orin), Some(4.703));
    let tx2 = "RAM 1936/7854MB CPU [2%@345,off,off] POM_5V_IN 2143/2143 POM_5V_GPU 0/0";
    assert_eq!(parse_tegrastats_line(tx2), Some(2.143));
    assert_eq!(parse_tegrastats_line("RAM 1936/7854MB CPU [2%@345]"), None);
    assert_eq!(parse_tegrastats_line("VDD_IN"), None);
}

#[test]
fn logs_read_whole_or_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("meter.csv");
    std::fs::write(&csv, "seconds,watts\n0,2\n1,4\n2,4\n3,2\n").unwrap();
    let t = read_log(&csv, LogFormat::Csv, 0.0).unwrap();
    assert_eq!(t.energy_j(0.0, 3.0), Some(10.0));

    let teg = dir.path().join("tegrastats.log");
    std::fs::write(&teg, "RAM 1/2MB VDD_IN 5000mW/5000mW\nRAM 1/2MB VDD_IN 7000mW/6000mW\n").unwrap();
    let t = read_log(&teg, LogFormat::Tegrastats, 100.0).unwrap();
    assert_eq!(t.points, vec![(0.0, 5.0), (0.1, 7.0)]);

    for (text, want) in [
        ("0,2\n1,4\noops\n", "line 3: expected seconds,watts, found \"oops\""),
        ("0,2\n0,4\n", "line 2: time 0 s does not follow 0 s"),
        ("0,2\n", "fewer than two readings"),
    ] {
        std::fs::write(&csv, text).unwrap();
        let err = read_log(&csv, LogFormat::Csv, 0.0).unwrap_err().to_string();
        assert!(err.contains("meter.csv") && err.contains(want), "{text:?}: {err}");
    }
    std::fs::write(&csv, format!("0,{}\n", "1".repeat(MAX_LINE + 10))).unwrap();
    let err = read_log(&csv, LogFormat::Csv, 0.0).unwrap_err().to_string();
    assert!(err.contains("line 1: longer than 4096 bytes"), "{err}");
}

#[test]
fn a_command_meter_is_read_live_and_a_dead_one_is_named() {
    let meter: PowerMeter = "cmd:while :; do echo 5.0; sleep 0.01; done".parse().unwrap();
    let running = meter.start().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let (from, to) = (0.05, running.now_s());
    let t = running.stop().unwrap();
    assert!(t.samples_in(from, to) >= MIN_WINDOW_SAMPLES, "{} samples", t.points.len());
    let avg = t.average_w(from, t.points.last().unwrap().0).unwrap();
    assert!((avg - 5.0).abs() < 1e-9, "{avg}");

    let liar: PowerMeter = "cmd:echo 5.0; echo overload; sleep 1".parse().unwrap();
    let running = liar.start().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let err = running.stop().unwrap_err().to_string();
    assert!(err.contains("line 2 is not a reading: \"overload\""), "{err}");

    let err = "rapl:/nonexistent/powercap".parse::<PowerMeter>().unwrap().start().err().unwrap().to_string();
    assert!(err.contains("no powercap here"), "{err}");
}

/// Stops `running` on another thread; the trace, or `None` when stopping hung past `limit`.
fn stop_within(running: RunningMeter, limit: Duration) -> Option<Result<PowerTrace>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(running.stop()));
    rx.recv_timeout(limit).ok()
}

#[test]
fn a_pipeline_meter_stops_as_a_whole_and_keeps_its_samples() {
    // `sh` leads the pipeline; killing it alone leaves the loop and `cat` holding the pipe.
    let meter: PowerMeter = "cmd:sh -c 'while true; do echo 1.5; sleep 0.05; done | cat'".parse().unwrap();
    let running = meter.start().unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let started = Instant::now();
    let trace = stop_within(running, Duration::from_secs(5)).expect("stop returns").unwrap();
    assert!(started.elapsed() < Duration::from_secs(3), "stopped in {:?}", started.elapsed());
    assert!(trace.points.len() >= 3, "{:?}", trace.points);
    assert!(trace.points.iter().all(|(_, w)| *w == 1.5), "{:?}", trace.points);

    // A process that left the group (its own session) keeps the pipe open past the kill: the
    // reader is given up on after its deadline and the samples read so far are kept.
    let escaped: PowerMeter = "cmd:setsid sh -c 'echo 2.5; echo 2.5; sleep 6'".parse().unwrap();
    let running = escaped.start().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let trace = stop_within(running, Duration::from_secs(5)).expect("stop returns").unwrap();
    let took = started.elapsed();
    assert!(took >= READER_DEADLINE && took < READER_DEADLINE + Duration::from_secs(1), "{took:?}");
    assert_eq!(trace.points.iter().map(|p| p.1).collect::<Vec<_>>(), vec![2.5, 2.5]);
}

#[test]
fn a_meter_command_that_exits_is_named_with_its_status_and_stderr() {
    let stopped = |spec: &str| {
        let running = spec.parse::<PowerMeter>().unwrap().start().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        running.stop().unwrap_err().to_string()
    };
    let err = stopped("cmd:false");
    assert!(err.contains("the meter command `false` exited with status 1: nothing on stderr"), "{err}");
    let err = stopped("cmd:echo 'ina219: no device at 0x40' >&2; exit 3");
    assert!(err.contains("exited with status 3: ina219: no device at 0x40"), "{err}");
    // Only the last lines, each cut short, however much it wrote.
    let err =
        stopped(&format!("cmd:for i in $(seq 1 100); do echo line$i {} >&2; done; exit 2", "x".repeat(500)));
    let said = err.split_once("exited with status 2: ").map_or("", |(_, said)| said);
    assert!(said.starts_with("line96 xxx") && said.contains("| line100 xxx"), "{err}");
    assert!(!said.contains("line95") && said.len() < 1100, "{} bytes: {said}", said.len());
}

#[test]
fn a_line_cut_off_by_stopping_the_meter_is_not_a_reading() {
    let meter: PowerMeter = "cmd:echo 1.5; echo 1.5; printf '0.3,'; sleep 5".parse().unwrap();
    let running = meter.start().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let trace = running.stop().unwrap();
    assert_eq!(trace.points.iter().map(|p| p.1).collect::<Vec<_>>(), vec![1.5, 1.5]);
    // The same line from a meter that ended by itself is what it printed, and named.
    let meter: PowerMeter = "cmd:echo 1.5; printf '0.3,'".parse().unwrap();
    let running = meter.start().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let err = running.stop().unwrap_err().to_string();
    assert!(err.contains("line 2 is not a reading: \"0.3,\""), "{err}");
}

#[test]
fn a_refused_powercap_is_told_apart_from_a_missing_one() {
    let path = Path::new("/sys/class/powercap/intel-rapl:0/energy_uj");
    let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
    let err = rapl_unreadable(path, &denied).to_string();
    assert!(
        err.contains("permission denied reading /sys/class/powercap/intel-rapl:0/energy_uj (RAPL energy counters need root or read access"),
        "{err}"
    );
    assert!(!err.contains("no powercap here"), "{err}");

    // A powercap directory the user may not read (where permissions bind: not for root).
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("max_energy_range_uj"), "262143328850\n").unwrap();
    std::fs::write(dir.path().join("energy_uj"), "1000\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o000)).unwrap();
    let refused = std::fs::read(dir.path().join("energy_uj")).is_err();
    let started = PowerMeter::Rapl(dir.path().to_path_buf()).start();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    if refused {
        let err = started.err().unwrap().to_string();
        assert!(err.contains("permission denied reading") && err.contains("need root"), "{err}");
    }
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config {
        cases: 300,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    })]
    #[test]
    fn meter_lines_never_panic(line in "\\PC{0,80}") {
        let _ = parse_csv_line(&line);
        let _ = parse_tegrastats_line(&line);
    }
}
