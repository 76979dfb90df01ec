//! A throwaway PostgreSQL cluster for the records tests: `initdb` into a temporary folder, a
//! server on a free loopback port, and a watchdog shell that stops the server and removes the
//! folder when this test process exits. One cluster per test process; each test takes a
//! database of its own. `EDGECERT_TEST_POSTGRES=postgres://...` (an account that may create
//! databases) uses a running server instead. Where PostgreSQL is not installed, the tests that
//! need it print "skipped: ..." and say how to install it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The server's URL without a database name (`postgres://user@host:port`), or why there is none.
pub fn server() -> Result<&'static str, &'static str> {
    static SERVER: OnceLock<Result<String, String>> = OnceLock::new();
    SERVER
        .get_or_init(|| match std::env::var("EDGECERT_TEST_POSTGRES") {
            Ok(url) => Ok(url.trim_end_matches('/').to_string()),
            Err(_) => start_cluster(),
        })
        .as_deref()
        .map_err(|e| e.as_str())
}

/// A fresh, empty database on the server, as a URL; `None` (having printed why) without one.
pub fn fresh_database(name: &str) -> Option<String> {
    let server = match server() {
        Ok(server) => server,
        Err(why) => {
            eprintln!("skipped: no PostgreSQL for the tests: {why}");
            return None;
        }
    };
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let database = format!("{name}_{}_{n}", std::process::id());
    let mut admin = postgres::Client::connect(&format!("{server}/postgres"), postgres::NoTls).unwrap();
    // One statement per call: PostgreSQL runs several sent at once as one transaction, and
    // creating a database cannot be part of one.
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {database}")).unwrap();
    admin.batch_execute(&format!("CREATE DATABASE {database}")).unwrap();
    Some(format!("{server}/{database}"))
}

/// Where the PostgreSQL server programs are: Debian's versioned folder, else `pg_config`'s.
fn bin_dir() -> Result<PathBuf, String> {
    let debian = std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|entries| {
        entries
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|bin| bin.join("initdb").is_file() && bin.join("postgres").is_file())
            .max()
    });
    if let Some(bin) = debian {
        return Ok(bin);
    }
    let out = Command::new("pg_config").arg("--bindir").output().map_err(|_| NOT_INSTALLED.to_string())?;
    let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if bin.join("initdb").is_file() && bin.join("postgres").is_file() {
        Ok(bin)
    } else {
        Err(NOT_INSTALLED.into())
    }
}

const NOT_INSTALLED: &str =
    "initdb and postgres not found (apt-get install postgresql, or set EDGECERT_TEST_POSTGRES to a server's URL)";

/// PostgreSQL refuses to run as root: as root, the server runs as the `postgres` account the
/// Debian package makes.
fn as_server_user(program: &Path) -> Command {
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn start_cluster() -> Result<String, String> {
    let bin = bin_dir()?;
    let folder = tempfile::Builder::new().prefix("edgecert-pg-").tempdir().map_err(|e| e.to_string())?.keep();
    let _ = Command::new("chown").args(["postgres:", &folder.to_string_lossy()]).status();
    let data = folder.join("data");
    let init = as_server_user(&bin.join("initdb"))
        .args(["-D", &data.to_string_lossy(), "-U", "edgecert", "--auth=trust", "--no-sync"])
        .output()
        .map_err(|e| format!("initdb: {e}"))?;
    if !init.status.success() {
        return Err(format!("initdb failed: {}", String::from_utf8_lossy(&init.stderr)));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    // The watchdog: the server in the background, stopped (and the folder removed) once this
    // test process is gone.
    let script = format!(
        "'{postgres}' -D '{data}' -p {port} -k '{folder}' -c listen_addresses=127.0.0.1 -c fsync=off >'{folder}/server.log' 2>&1 & server=$!; \
         while [ -d /proc/{me} ] && kill -0 $server 2>/dev/null; do sleep 1; done; kill -INT $server 2>/dev/null; wait $server; rm -rf '{folder}'",
        postgres = bin.join("postgres").display(),
        data = data.display(),
        folder = folder.display(),
        me = std::process::id(),
    );
    as_server_user(Path::new("sh"))
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting postgres: {e}"))?;
    let url = format!("postgres://edgecert@127.0.0.1:{port}");
    let started = Instant::now();
    loop {
        match postgres::Client::connect(&format!("{url}/postgres"), postgres::NoTls) {
            Ok(_) => return Ok(url),
            Err(e) if started.elapsed() > Duration::from_secs(60) => {
                let log = std::fs::read_to_string(folder.join("server.log")).unwrap_or_default();
                return Err(format!("the server did not start in 60 s ({e}): {log}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}
