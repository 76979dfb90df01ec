//! The `edgecert` binary: parse, run, map the result to an exit code.

fn main() {
    std::process::exit(edgecert::cli::main());
}
