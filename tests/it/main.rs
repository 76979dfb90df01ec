//! The integration tests, in one binary: every module runs the real `edgecert` binary or the
//! library on real files, models and sockets. One binary links tract and onnxruntime's bindings
//! once (it was twenty-one, each linking both, on a 2-core machine).

mod bad_input;
mod byom;
mod cache;
mod certify;
#[allow(dead_code)]
mod common;
mod coverage;
mod diff;
mod engines;
mod exec;
mod export;
mod fuzz_model;
mod i18n;
mod inspect;
mod intake;
mod layers;
mod negative_controls;
mod postgres_server;
mod power;
mod readback;
mod records;
mod regression;
mod remote;
mod report_browser;
mod report_html;
mod shard;
mod soak;
mod tflite;
mod verify;
