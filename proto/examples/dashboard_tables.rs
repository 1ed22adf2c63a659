//! Prints the stage tables of hub/web/dashboard.js (`STAGES` and `PATHS`), from
//! `proto/src/stage.rs`: `cargo run -p sapha-proto --example dashboard_tables`.
//! A test (proto/tests/contract.rs) fails when the dashboard's copy differs.

fn main() {
    print!("{}", sapha_proto::stage::dashboard_tables_js());
}
