//! Network namespaces that a test makes, for partitions where packets are really dropped.
//!
//! A [`Netns`] is a fresh namespace joined to the test's own by a veth pair on a /30 of its
//! own: the test's side is [`Netns::gateway`], the namespace's side [`Netns::addr`]. A
//! process started in it ([`crate::HostSpec::in_netns`]) reaches the test's listeners only
//! through the gateway address, so a test puts a [`crate::FaultyLink`] there
//! ([`crate::FaultyLink::start_on`]) in front of its nats-server, which itself stays on
//! loopback.
//!
//! [`Netns::cut`] drops every packet both ways, with no reset and no ICMP: each end of the
//! veth gets a token-bucket qdisc (`tc qdisc … tbf`) whose bucket is smaller than any packet,
//! so everything is dropped on egress. (This kernel has neither `netem` nor the `tc`
//! classifiers a drop filter needs; delay and loss come from the [`crate::FaultyLink`].)
//! [`Netns::heal`] removes them; TCP's retransmissions then carry on where they were.
//!
//! Needs root (or CAP_NET_ADMIN) and iproute2's `ip` and `tc`. Everything made here is
//! removed when the handle drops; only names with this process's id are ever touched.

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::{Error, Result};

/// One namespace and its veth pair.
pub struct Netns {
    name: String,
    /// The veth end in the test's namespace (its peer lives in the namespace).
    outer: String,
    inner: String,
    gateway: Ipv4Addr,
    addr: Ipv4Addr,
}

impl Netns {
    /// Creates a namespace with loopback up and a veth pair to the test's namespace.
    pub fn create() -> Result<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        // Interface names have at most 15 bytes: "lt" + pid (up to 7 digits) + n + side.
        let tag = format!("lt{pid}x{}", n % 1000);
        // A /30 per namespace, in a block picked by the process id so that concurrent test
        // processes rarely meet (and a meeting fails loudly: the address is in use).
        let block = 200 + (pid % 50) as u8;
        let base = (n % 16_384) * 4;
        let octets =
            |last: u32| Ipv4Addr::new(10, block, (base / 256) as u8, (base % 256 + last) as u8);
        let ns = Self {
            name: tag.clone(),
            outer: format!("{tag}o"),
            inner: format!("{tag}i"),
            gateway: octets(1),
            addr: octets(2),
        };
        // From here on, Drop removes whatever was made.
        ip(&["netns", "add", &ns.name])?;
        ip(&[
            "link", "add", &ns.outer, "type", "veth", "peer", "name", &ns.inner,
        ])?;
        ip(&["link", "set", &ns.inner, "netns", &ns.name])?;
        ip(&[
            "addr",
            "add",
            &format!("{}/30", ns.gateway),
            "dev",
            &ns.outer,
        ])?;
        ip(&["link", "set", &ns.outer, "up"])?;
        ns.exec_ip(&["addr", "add", &format!("{}/30", ns.addr), "dev", &ns.inner])?;
        ns.exec_ip(&["link", "set", &ns.inner, "up"])?;
        ns.exec_ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The test's side of the veth: where processes in the namespace reach the test.
    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }

    /// The namespace's side of the veth.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// Drops every packet between the namespace and the test, both ways, silently.
    pub fn cut(&self) -> Result<()> {
        let drop_all = [
            "root", "tbf", "rate", "1kbit", "burst", "1", "latency", "1ms",
        ];
        let mut outer = vec!["qdisc", "replace", "dev", self.outer.as_str()];
        outer.extend(drop_all);
        tc(&outer)?;
        let mut inner = vec!["-n", self.name.as_str(), "qdisc", "replace", "dev"];
        inner.push(&self.inner);
        inner.extend(drop_all);
        tc(&inner)
    }

    /// Lets packets through again.
    pub fn heal(&self) -> Result<()> {
        tc(&["qdisc", "del", "dev", &self.outer, "root"])?;
        tc(&["-n", &self.name, "qdisc", "del", "dev", &self.inner, "root"])
    }

    fn exec_ip(&self, args: &[&str]) -> Result<()> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend(args);
        ip(&all)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace deletes its veth end and with it the pair; the outer end
        // is deleted too in case the pair was made but never moved.
        let _ = ip(&["link", "del", &self.outer]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}

fn ip(args: &[&str]) -> Result<()> {
    run("ip", args)
}

fn tc(args: &[&str]) -> Result<()> {
    run("tc", args)
}

fn run(bin: &str, args: &[&str]) -> Result<()> {
    let out = Command::new(bin).args(args).output().map_err(|e| {
        Error::Setup(format!(
            "{bin} {}: {e} (network namespaces need iproute2: apt install iproute2)",
            args.join(" ")
        ))
    })?;
    if out.status.success() {
        return Ok(());
    }
    Err(Error::Setup(format!(
        "{bin} {} failed: {} (network namespaces need root or CAP_NET_ADMIN)",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}
