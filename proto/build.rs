//! Compiles `schema/sapha/v1/events.proto` with the pure-Rust `protox`, so the
//! build needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let schemas = ["schema/sapha/v1/events.proto", "schema/sapha/v1/hub.proto"];
    for schema in schemas {
        println!("cargo:rerun-if-changed={schema}");
    }
    let descriptors = protox::compile(schemas, ["schema"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
