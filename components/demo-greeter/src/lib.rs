//! The demo's greeter: greets by name and counts visits in `wasi:keyvalue` (bucket `demo`),
//! so the count is the lattice's, whichever host answers.

wit_bindgen::generate!({ path: "../wit", world: "demo-greeter-component", generate_all });

use exports::lattice::examples::greeter::Guest;
use wasi::keyvalue::{atomics, store};

struct DemoGreeter;

impl Guest for DemoGreeter {
    fn greet(name: String) -> String {
        let visits = store::open("demo")
            .map_err(|e| format!("{e:?}"))
            .and_then(|b| atomics::increment(&b, "visits", 1).map_err(|e| format!("{e:?}")));
        match visits {
            Ok(n) => format!("Hello, {name}! You are visitor number {n}."),
            Err(e) => format!("Hello, {name}! (visits unavailable: {e})"),
        }
    }

    fn hello() -> String {
        Self::greet("world".to_string())
    }

    fn config() -> Vec<(String, String)> {
        Vec::new()
    }
}

export!(DemoGreeter);
