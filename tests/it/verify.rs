//! Signed certificates: `keygen`, `certify --sign-key`, and `verify` naming what differs when a
//! byte of the certificate, the model, the golden set or the profile changed.

use crate::common;

use std::path::{Path, PathBuf};

use common::*;
use edgecert::certificate::schema::Certificate;

struct Signed {
    dir: tempfile::TempDir,
    key: PathBuf,
    cert: PathBuf,
}

fn signed_certificate() -> Signed {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("lab-key");
    let made = edgecert(&["keygen", s(&key)]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    assert!(made.stdout.contains("fingerprint "), "{}", made.stdout);
    let out = dir.path().join("out");
    let run = certify_quietly(&out, "profiles/rk3588.toml", "golden/shapes", &["--sign-key", s(&key)]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    Signed { cert: out.join("shapes/rk3588/certificate.json"), key, dir }
}

fn verify(cert: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["verify", s(cert)];
    args.extend_from_slice(extra);
    edgecert(&args)
}

fn public(key: &Path) -> String {
    format!("{}.pub", key.display())
}

#[test]
fn a_signed_certificate_verifies_against_its_files_and_key() {
    let signed = signed_certificate();
    let pubkey = public(&signed.key);
    let run = verify(
        &signed.cert,
        &[
            "--key",
            &pubkey,
            "--model",
            "golden/shapes/shapes_int8.onnx",
            "--golden",
            "golden/shapes",
            "--profile",
            "profiles/rk3588.toml",
        ],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("ok: signed by key ") && run.stdout.ends_with("verify result: ok\n"),
        "{}",
        run.stdout
    );
    let cert: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&signed.cert).unwrap()).unwrap();
    assert_eq!(cert["signature"]["algorithm"], "ed25519");
    assert_eq!(cert["signature"]["value"].as_str().unwrap().len(), 128);
}

/// Rewrites one member of the certificate (as JSON) and, like a careful forger, recomputes the
/// content id so only the signature can tell.
fn tamper(cert: &Path, edit: impl Fn(&mut serde_json::Value), reseal: bool) {
    let mut value: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(cert).unwrap()).unwrap();
    edit(&mut value);
    if reseal {
        let typed: Certificate = serde_json::from_value(value.clone()).unwrap();
        value["certificate_id"] = serde_json::Value::String(typed.content_id());
    }
    std::fs::write(cert, serde_json::to_string_pretty(&value).unwrap()).unwrap();
}

#[test]
fn any_changed_member_fails_verification() {
    type Edit = fn(&mut serde_json::Value);
    let edits: [(&str, Edit); 5] = [
        ("verdict", |v| v["verdict"] = "PASS".into()),
        ("a measured value", |v| v["checks"][3]["measured"] = 0.001.into()),
        ("the issue date", |v| v["issued_at"] = "2020-01-01T00:00:00Z".into()),
        ("the model digest", |v| v["subject"]["sha256"] = "0".repeat(64).into()),
        ("the signature", |v| {
            let sig = v["signature"]["value"].as_str().unwrap().to_string();
            v["signature"]["value"] =
                format!("{}{}", if sig.starts_with('0') { "1" } else { "0" }, &sig[1..]).into();
        }),
    ];
    for (what, edit) in edits {
        for reseal in [false, true] {
            let signed = signed_certificate();
            tamper(&signed.cert, edit, reseal);
            let run = verify(&signed.cert, &["--key", &public(&signed.key)]);
            assert_eq!(run.code, 1, "{what} (reseal {reseal}): {}\n{}", run.stdout, run.stderr);
            assert!(run.stdout.contains("verify result: FAILED"), "{}", run.stdout);
            if what != "the signature" {
                assert!(
                    run.stdout.contains("FAILED: the signature does not match"),
                    "{what}: {}",
                    run.stdout
                );
            }
            if !reseal && what != "the signature" {
                assert!(run.stdout.contains("a member was changed after issue"), "{what}: {}", run.stdout);
            }
        }
    }
}

#[test]
fn swapped_files_and_other_keys_are_named() {
    let signed = signed_certificate();
    let other = signed.dir.path().join("other-key");
    assert_eq!(edgecert(&["keygen", s(&other)]).code, 0);
    let run = verify(&signed.cert, &["--key", &public(&other), "--model", "golden/shapes/shapes_fp32.onnx"]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("not by the expected key"), "{}", run.stdout);
    assert!(run.stdout.contains("FAILED: model golden/shapes/shapes_fp32.onnx hashes to"), "{}", run.stdout);

    let golden = copied_golden(signed.dir.path(), "shapes");
    std::fs::write(golden.join("samples/00003.png"), encode_png(32, 32, 1, &[9; 32 * 32])).unwrap();
    let run = verify(&signed.cert, &["--golden", s(&golden), "--profile", "profiles/qcs6490.toml"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains(&format!("FAILED: golden set {} hashes to", golden.display())),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("FAILED: chip profile profiles/qcs6490.toml hashes to"), "{}", run.stdout);
}

#[test]
fn keys_are_guarded() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k");
    assert_eq!(edgecert(&["keygen", s(&key)]).code, 0);
    let again = edgecert(&["keygen", s(&key)]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let run = edgecert(&[
            "certify",
            "--sign-key",
            s(&key),
            "--golden",
            "golden/shapes",
            "--out",
            s(&dir.path().join("o")),
        ]);
        assert_eq!(run.code, 2);
        assert!(run.stderr.contains("readable by others"), "{}", run.stderr);
    }
    let not_a_key = dir.path().join("junk.pub");
    std::fs::write(&not_a_key, "hello").unwrap();
    let out = dir.path().join("out");
    let run = edgecert(&[
        "certify",
        "-q",
        "--golden",
        "golden/shapes",
        "--profile",
        "profiles/rk3588.toml",
        "--out",
        s(&out),
    ]);
    assert_eq!(run.code, 1);
    let cert = out.join("shapes/rk3588/certificate.json");
    let run = verify(&cert, &["--key", s(&not_a_key)]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("junk.pub") && run.stderr.contains("not an edgecert key"), "{}", run.stderr);
    let unsigned = verify(&cert, &["--key", &public(&key)]);
    assert_eq!(unsigned.code, 1);
    assert!(unsigned.stdout.contains("FAILED: the certificate is not signed"), "{}", unsigned.stdout);
    assert_eq!(verify(&cert, &[]).code, 0, "an unsigned certificate still verifies its content id");
}

/// An unsigned certificate of the shapes family on one chip, with its raw observations.
fn issued(dir: &Path) -> PathBuf {
    let out = dir.join("out");
    let run = certify_quietly(&out, "profiles/rk3588.toml", "golden/shapes", &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    out.join("shapes/rk3588/certificate.json")
}

#[test]
fn recompute_reproduces_every_verdict_from_the_raw_observations() {
    let dir = tempfile::tempdir().unwrap();
    let cert = issued(dir.path());
    let observations = cert.with_file_name("observations.json");
    let recorded: serde_json::Value = serde_json::from_slice(&std::fs::read(&observations).unwrap()).unwrap();
    let certified: serde_json::Value = serde_json::from_slice(&std::fs::read(&cert).unwrap()).unwrap();
    assert_eq!(recorded["format"], "edgecert-observations/1");
    let latencies = recorded["timing"]["value"]["latencies_ms"].as_array().unwrap().len();
    assert_eq!(latencies as u64, common::check(&certified, "latency")["samples"].as_u64().unwrap());
    assert_eq!(recorded["replay"]["value"]["compressed"]["metric"], "top1_accuracy");
    assert_eq!(recorded["replay"]["value"]["compressed"]["truth"].as_array().unwrap().len(), 500);
    assert_eq!(certified["observations"]["path"], "observations.json");

    let run = verify(&cert, &["--recompute"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let executed = certified["coverage"]["executed"].as_array().unwrap();
    for check in executed {
        let line = format!("ok: check {}: {} reproduced", check.as_str().unwrap(), {
            let c = common::check(&certified, check.as_str().unwrap());
            c["verdict"].as_str().unwrap().to_string()
        });
        assert!(run.stdout.contains(&line), "missing `{line}`:\n{}", run.stdout);
    }
    assert!(run.stdout.contains("ok: every metrics value and interval reproduced"), "{}", run.stdout);
    assert!(run.stdout.contains("ok: overall verdict INCONCLUSIVE reproduced"), "{}", run.stdout);
    assert_eq!(recorded["timing"]["value"]["systematic_error"]["relative"], 0.55);
    assert!(!run.stdout.contains("carry no systematic error"), "{}", run.stdout);
}

/// Observations from before the emulator's error was recorded reproduce the laxer rule they
/// were decided under, and `verify` says it is the laxer one; an error no emulator could have
/// is refused.
#[test]
fn recompute_says_when_emulated_latency_was_decided_on_its_scatter_alone() {
    let dir = tempfile::tempdir().unwrap();
    let cert = issued(dir.path());
    rebind_observations(&cert, |value| {
        value["timing"]["value"].as_object_mut().unwrap().remove("systematic_error");
    });
    let run = verify(&cert, &["--recompute"]);
    assert!(
        run.stdout.contains("note: the observations' emulated latencies carry no systematic error: latency was recomputed on their scatter alone, not across the emulator's systematic error (±39 % across chips, or the chip's own)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("FAILED: check latency does not reproduce"),
        "the certificate recorded the error: {}",
        run.stdout
    );

    rebind_observations(&cert, |value| {
        value["timing"]["value"]["systematic_error"] =
            serde_json::json!({"relative": 15.0, "source": "forged"});
    });
    let run = verify(&cert, &["--recompute"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("timing systematic_error.relative holds 15, not a relative error in [0, 10)"),
        "{}",
        run.stderr
    );
}

#[test]
fn recompute_names_a_verdict_the_observations_do_not_give() {
    let dir = tempfile::tempdir().unwrap();
    let cert = issued(dir.path());
    // A forger who edits a figure and reseals the content id: the id holds, recompute does not.
    tamper(
        &cert,
        |v| {
            let latency =
                v["checks"].as_array_mut().unwrap().iter_mut().find(|c| c["name"] == "latency").unwrap();
            latency["measured"] = 0.5.into();
        },
        true,
    );
    let plain = verify(&cert, &[]);
    assert_eq!(plain.code, 0, "the resealed id matches: {}", plain.stdout);
    let run = verify(&cert, &["--recompute"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("FAILED: check latency does not reproduce: measured: certified 0.5, recomputed "),
        "{}",
        run.stdout
    );
}

#[test]
fn changed_or_misplaced_observations_fail_verification() {
    let dir = tempfile::tempdir().unwrap();
    let cert = issued(dir.path());
    let observations = cert.with_file_name("observations.json");
    let original = std::fs::read(&observations).unwrap();
    let text = String::from_utf8(original.clone()).unwrap();
    let at = text.find("\"latencies_ms\":[").unwrap() + "\"latencies_ms\":[".len();
    std::fs::write(&observations, format!("{}9{}", &text[..at], &text[at..])).unwrap();
    for extra in [&[][..], &["--recompute"][..]] {
        let run = verify(&cert, extra);
        assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
        assert!(run.stdout.contains("they were changed after issue"), "{extra:?}: {}", run.stdout);
    }

    std::fs::remove_file(&observations).unwrap();
    let alone = verify(&cert, &[]);
    assert_eq!(alone.code, 0, "{}", alone.stdout);
    assert!(alone.stdout.contains("note: raw observations not checked"), "{}", alone.stdout);
    let run = verify(&cert, &["--recompute"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains("FAILED: cannot recompute: ") && run.stdout.contains("is missing"),
        "{}",
        run.stdout
    );

    std::fs::write(&observations, &original).unwrap();
    tamper(&cert, |v| v["observations"]["path"] = "../../observations.json".into(), true);
    let run = verify(&cert, &["--recompute"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("must be a file name beside the certificate"), "{}", run.stderr);
}

#[test]
fn observations_whose_samples_disagree_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cert = issued(dir.path());
    rebind_observations(&cert, |value| {
        value["replay"]["value"]["compressed"]["predicted"].as_array_mut().unwrap().pop();
    });
    let run = verify(&cert, &["--recompute"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("observations.json")
            && run.stderr.contains("`predicted` has 499 samples but `truth` has 500"),
        "{}",
        run.stderr
    );
}

/// A board profile's certificate binds the board and the chip it extends: verify and recompute
/// accept the board; an edit to the chip file under it is named as a changed profile.
#[test]
fn a_board_certificate_covers_the_chip_file_it_extends() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let run = certify_quietly(&out, "profiles/rock5b-8gb.toml", "golden/shapes", &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let cert_path = out.join("shapes/rock5b-8gb/certificate.json");
    let cert: serde_json::Value = serde_json::from_slice(&std::fs::read(&cert_path).unwrap()).unwrap();
    let board = std::fs::read(root().join("profiles/rock5b-8gb.toml")).unwrap();
    let chip = std::fs::read(root().join("profiles/rk3588.toml")).unwrap();
    let chain =
        edgecert::vocab::hash::sha256_of_parts([("rock5b-8gb.toml", &board[..]), ("rk3588.toml", &chip[..])]);
    assert_eq!(cert["profile"]["sha256"], chain);
    // The board's 8 GB decide memory, which the chip alone leaves INCONCLUSIVE.
    assert_eq!(check(&cert, "memory")["verdict"], "PASS", "{}", check(&cert, "memory"));
    assert_eq!(check(&cert, "memory")["limit"], 8589934592.0);

    let run = verify(&cert_path, &["--profile", "profiles/rock5b-8gb.toml", "--recompute"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("chip profile profiles/rock5b-8gb.toml has the certified sha256"),
        "{}",
        run.stdout
    );

    // The same board over an edited chip is another profile.
    let copy = dir.path().join("profiles");
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::write(copy.join("rock5b-8gb.toml"), &board).unwrap();
    let edited =
        String::from_utf8(chip).unwrap().replace("dram_bandwidth_gbps = 34.0", "dram_bandwidth_gbps = 17.0");
    std::fs::write(copy.join("rk3588.toml"), edited).unwrap();
    let run = verify(&cert_path, &["--profile", s(&copy.join("rock5b-8gb.toml"))]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout.contains("FAILED: chip profile") && run.stdout.contains("hashes to"),
        "{}",
        run.stdout
    );
}

/// A key made for the example laboratory's authoriser, and a certificate it signed with that
/// issuer sealed in; the trusted-keys entry `keygen` printed for it.
struct Authorised {
    dir: tempfile::TempDir,
    cert: PathBuf,
    entry: String,
}

fn authorised_certificate() -> Authorised {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("jane");
    let issuer = root().join("docs/issuer.example.toml");
    let made = edgecert(&["keygen", s(&key), "--issuer", s(&issuer), "--expires", "2099-12-31"]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    let entry = made.stdout[made.stdout.find("[[key]]").expect("an entry is printed")..].to_string();
    let owner = std::fs::read_to_string(public(&key)).unwrap();
    assert!(
        owner.contains("authoriser = \"Dr. Jane Example\"") && owner.contains("expires = \"2099-12-31\""),
        "{owner}"
    );
    let out = dir.path().join("out");
    let run = certify_quietly(
        &out,
        "profiles/rk3588.toml",
        "golden/shapes",
        &["--sign-key", s(&key), "--issuer", s(&issuer)],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    Authorised { cert: out.join("shapes/rk3588/certificate.json"), entry, dir }
}

/// `verify --trusted-keys` with the printed entry, edited by `edit`.
fn verify_trusting(signed: &Authorised, edit: impl Fn(&str) -> String) -> Run {
    let list = signed.dir.path().join("trusted.toml");
    std::fs::write(&list, edit(&signed.entry)).unwrap();
    verify(&signed.cert, &["--trusted-keys", s(&list)])
}

/// An edit of a trusted-keys entry.
type EntryEdit = dyn Fn(&str) -> String;

#[test]
fn a_trusted_key_says_who_signed_and_a_revoked_expired_or_foreign_one_is_refused() {
    let signed = authorised_certificate();
    let run = verify_trusting(&signed, |e| e.to_string());
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stdout.contains("ok: signed by Dr. Jane Example (Technical Manager, Example Edge Test Laboratory Ltd.) with trusted key"),
        "{}",
        run.stdout
    );
    let refusals: [(&str, Box<EntryEdit>); 4] = [
        ("revoked on 2026-01-02", Box::new(|e| format!("{e}revoked = \"2026-01-02\"\n"))),
        (
            "which expired on 2020-01-01; the certificate was issued on",
            Box::new(|e| e.replace("2099-12-31", "2020-01-01")),
        ),
        (
            "the certificate names Dr. Jane Example as its authoriser, but key",
            Box::new(|e| e.replace("Dr. Jane Example", "Mr. Someone Else")),
        ),
        // Another valid key (ed25519's base point), so the list holds but does not name ours.
        (
            "trusted.toml does not list",
            Box::new(|e| {
                let ours = &e[e.find("public_key = \"").unwrap() + 14..][..64];
                e.replace(ours, &format!("58{}", "66".repeat(31)))
            }),
        ),
    ];
    for (reason, edit) in refusals {
        let run = verify_trusting(&signed, edit);
        let failed = run.stdout.lines().find(|l| l.starts_with("FAILED:")).unwrap_or_default().to_string();
        assert_eq!(run.code, 1, "{}", run.stdout);
        assert!(failed.contains(reason), "expected `{reason}`: {}", run.stdout);
    }
}

#[test]
fn a_key_of_another_authoriser_cannot_sign_for_this_issuer() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.toml");
    let example = std::fs::read_to_string(root().join("docs/issuer.example.toml")).unwrap();
    std::fs::write(&other, example.replace("Dr. Jane Example", "Mr. Someone Else")).unwrap();
    let key = dir.path().join("someone");
    assert_eq!(edgecert(&["keygen", s(&key), "--issuer", s(&other)]).code, 0);
    let issuer = root().join("docs/issuer.example.toml");
    let out = dir.path().join("out");
    let run = certify_quietly(
        &out,
        "profiles/rk3588.toml",
        "golden/shapes",
        &["--sign-key", s(&key), "--issuer", s(&issuer)],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("belongs to Mr. Someone Else") && run.stderr.contains("names Dr. Jane Example"),
        "{}",
        run.stderr
    );
    assert!(!out.exists(), "nothing is written when the signer is refused");
}

#[test]
fn a_trusted_keys_file_that_cannot_hold_is_refused_naming_the_entry() {
    let signed = authorised_certificate();
    for (edit, message) in [
        ("x = 1\n", "unknown field `x`"),
        ("", "lists no [[key]]"),
        (
            "[[key]]\npublic_key = \"abc\"\nlab = \"L\"\nauthoriser = \"A\"\nrole = \"R\"\n",
            "[[key]] #1 (A): public_key must be 64 hex digits",
        ),
    ] {
        let run = verify_trusting(&signed, |_| edit.to_string());
        assert_eq!(run.code, 2, "{}", run.stdout);
        assert!(run.stderr.contains("trusted.toml") && run.stderr.contains(message), "{}", run.stderr);
    }
    let run = verify_trusting(&signed, |e| format!("{e}revoked = \"last week\"\n"));
    assert!(
        run.code == 2 && run.stderr.contains("revoked = \"last week\": expected a date as YYYY-MM-DD"),
        "{}",
        run.stderr
    );
}

#[test]
fn verify_names_the_member_edited_after_issue() {
    let signed = authorised_certificate();
    tamper(&signed.cert, |v| v["issuer"]["lab"]["name"] = "Forged Lab".into(), false);
    let run = verify(&signed.cert, &[]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("a member was changed after issue (changed: `issuer`)"), "{}", run.stdout);
    let run = edgecert(&["show", s(&signed.cert)]);
    assert!(run.code == 2 && run.stderr.contains("(changed: `issuer`)"), "{}", run.stderr);
}
