//! PyO3 bindings: the extension module `proxilion._core`.
//!
//! This crate is deliberately thin. Each native function does one whole job (sign a message,
//! verify a tag, ...) so the Python/Rust crossing is paid once per job. All errors are mapped to
//! Python exceptions; nothing here may panic across the FFI boundary (the core crate returns
//! `Result`s, and PyO3 turns any unexpected panic into `PanicException` rather than aborting).
//!
//! Each area registers its functions from its own file, so areas can grow independently.

use pyo3::prelude::*;

mod agent;
mod agent_msg;
mod chain;
mod convert;
mod guard;
mod limit;
mod mac;
mod scan;
mod sign;
mod state;
mod stats;

/// Version of the native module (the Rust crate version).
#[pyfunction]
fn version() -> &'static str {
    proxilion_core::VERSION
}

/// Facts about this build, for `proxilion.build_info()` and bug reports.
#[pyfunction]
fn build_info(py: Python<'_>) -> PyResult<Bound<'_, pyo3::types::PyDict>> {
    let d = pyo3::types::PyDict::new(py);
    d.set_item("version", proxilion_core::VERSION)?;
    d.set_item("backend", "native")?;
    d.set_item(
        "profile",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
    )?;
    d.set_item("target_arch", std::env::consts::ARCH)?;
    d.set_item("target_os", std::env::consts::OS)?;
    d.set_item("abi3", "cp310")?;
    d.set_item(
        "features",
        vec![
            "agent",
            "agent_msg",
            "chain",
            "guard",
            "limit",
            "mac",
            "scan",
            "sign",
            "stats",
        ],
    )?;
    Ok(d)
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", proxilion_core::VERSION)?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add_function(wrap_pyfunction!(build_info, m)?)?;
    agent::register(m)?;
    agent_msg::register(m)?;
    chain::register(m)?;
    mac::register(m)?;
    limit::register(m)?;
    sign::register(m)?;
    scan::register(m)?;
    guard::register(m)?;
    stats::register(m)?;
    Ok(())
}
