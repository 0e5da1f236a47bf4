//! Reaches `calc` through an import that the lattice links at runtime.

wit_bindgen::generate!({ path: "../wit", world: "relay-component", generate_all });

use exports::lattice::examples::relay::Guest;
use lattice::examples::calc;
use wasmcloud::bus::lattice as bus;

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

    fn add_via_link(link: String, a: i32, b: i32) -> i32 {
        let calc_interface = bus::CallTargetInterface::new("lattice", "examples", "calc");
        bus::set_link_name(&link, vec![calc_interface]);
        calc::add(a, b)
    }
}

export!(Relay);
