//! Prints docs/EVENTS.md: `cargo run -p sapha-proto --example events_md > docs/EVENTS.md`.

use sapha_proto::examples::one_of_each_kind;
use sapha_proto::stage::{moves_markdown, stages_markdown};

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
    println!("## Stages\n");
    print!("{}", stages_markdown());
    println!("## Legal stage moves\n");
    println!(
        "Generated from `proto/src/stage.rs`, the rules the publisher enforces \
         (`illegal_transition`). A bill's first event names the first stage; each \
         later one moves `from_stage` to one of the stages listed for it. The rules \
         that need the bill's history (waits, returns) are checked by the publisher \
         (`wait_not_over`, `wrong_return_stage`); docs/LEGISLATIVE-MODEL.md cites the \
         section behind each.\n"
    );
    print!("{}", moves_markdown());
}
