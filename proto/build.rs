//! Compiles `schema/sapha/v1/events.proto` with the pure-Rust `protox`, so the
//! build needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let schema = "schema/sapha/v1/events.proto";
    println!("cargo:rerun-if-changed={schema}");
    let descriptors = protox::compile([schema], ["schema"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
