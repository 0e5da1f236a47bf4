//! Reaches `calc` through an import that the lattice links at runtime.

wit_bindgen::generate!({ path: "../wit", world: "relay-component" });

use exports::lattice::examples::relay::Guest;
use lattice::examples::calc;

struct Relay;

impl Guest for Relay {
    fn add_via_calc(a: i32, b: i32) -> i32 {
        calc::add(a, b)
    }

    fn reverse_via_calc(s: String) -> String {
        calc::reverse(&s)
    }

    fn wait_via_calc(ms: u32) -> u32 {
        calc::wait(ms)
    }
}

export!(Relay);
