use proxilion_core::stats::{Config, Engine};
use std::time::Instant;
fn main() {
    let names = ["search", "db_query", "send_email"];
    let n = 3_000_000u64;
    let mut e = Engine::new(Config::new(100, 10, 20).unwrap());
    let t = Instant::now();
    for i in 0..n {
        let mono = i as f64 * 0.05;
        e.record_tool_call(
            names[(i % 7 % 3) as usize],
            Some(42.0 + (i % 5) as f64),
            None,
            mono,
            1.6e9 + mono,
        )
        .unwrap();
    }
    println!(
        "single {:.1} ns/call",
        t.elapsed().as_nanos() as f64 / n as f64
    );
}
