//! Writes the shipped scenarios into `scenarios/` (or the directory given as the
//! first argument): `cargo run -p sapha-publisher --example make_scenarios`.

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = std::env::args_os().nth(1).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios"),
        PathBuf::from,
    );
    for (path, count) in sapha_publisher::scenario::write_all(&dir)? {
        println!("{}: {count} events", path.display());
    }
    Ok(())
}
