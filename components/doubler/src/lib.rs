//! Another implementation of `calc` (add doubles, reverse shouts): a second link target to
//! relink to.

wit_bindgen::generate!({ path: "../wit", world: "calc-component" });

use exports::lattice::examples::calc::Guest;

struct Doubler;

impl Guest for Doubler {
    fn add(a: i32, b: i32) -> i32 {
        a.wrapping_add(b).wrapping_mul(2)
    }

    fn reverse(s: String) -> String {
        s.chars().rev().collect::<String>().to_uppercase()
    }

    fn wait(ms: u32) -> u32 {
        std::thread::sleep(std::time::Duration::from_millis(ms.into()));
        ms
    }
}

export!(Doubler);
