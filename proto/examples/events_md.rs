//! Prints docs/EVENTS.md: `cargo run -p sapha-proto --example events_md > docs/EVENTS.md`.

use sapha_proto::examples::one_of_each_kind;

fn main() {
    print!("{}", include_str!("events_md_head.md"));
    for event in one_of_each_kind() {
        println!("### `{}`\n", event.body.kind());
        println!("Subject `{}`.\n", event.subject());
        println!(
            "```json\n{}\n```\n",
            serde_json::to_string_pretty(&event).unwrap()
        );
    }
}
