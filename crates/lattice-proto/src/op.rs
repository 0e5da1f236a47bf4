//! The control interface's operations as a typed list, and the answers of `host.alive`.
//!
//! A control subject is `{root}.{noun}.{verb}[.{target}]` (see
//! [`crate::subject::CtlSubjects`]); [`Op`] names every `noun.verb` a host serves, with where
//! its target goes ([`Target`]). Hosts dispatch on it and clients build their requests from
//! it, so the two cannot disagree on a name.

use std::fmt;

/// What a control subject's last token names, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// No target: the whole lattice is asked (scatter-gather or a queue group).
    Lattice,
    /// The id of the one host asked.
    Host,
    /// A named config (which may hold dots, so it is the rest of the subject).
    Config,
}

macro_rules! ops {
    ($($(#[$doc:meta])* $name:ident = $noun:literal . $verb:literal, $target:ident;)*) => {
        /// A control operation a Lattice host serves.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Op {
            $($(#[$doc])* $name,)*
        }

        impl Op {
            /// Every operation, in the order of the control interface's reference.
            pub const ALL: &'static [Op] = &[$(Op::$name,)*];

            /// The subject's noun token (`host`, `component`, …).
            pub fn noun(self) -> &'static str {
                match self { $(Op::$name => $noun,)* }
            }

            /// The subject's verb token (`ping`, `scale`, …).
            pub fn verb(self) -> &'static str {
                match self { $(Op::$name => $verb,)* }
            }

            /// What the token after the verb names.
            pub fn target(self) -> Target {
                match self { $(Op::$name => Target::$target,)* }
            }

            /// The operation named `noun.verb`, if a host serves it.
            pub fn from_parts(noun: &str, verb: &str) -> Option<Op> {
                match (noun, verb) {
                    $(($noun, $verb) => Some(Op::$name),)*
                    _ => None,
                }
            }
        }
    };
}

ops! {
    /// Scatter-gather: every host describes itself.
    HostPing = "host"."ping", Lattice;
    /// One host's inventory.
    HostGet = "host"."get", Host;
    /// Lattice extension: is the host there, and is a call of its still running ([`Alive`]).
    HostAlive = "host"."alive", Host;
    /// Stop one host.
    HostStop = "host"."stop", Host;
    /// Scatter-gather: hosts able to run a component bid.
    ComponentAuction = "component"."auction", Lattice;
    /// Scale a component on one host.
    ComponentScale = "component"."scale", Host;
    /// Replace a component's artifact on one host.
    ComponentUpdate = "component"."update", Host;
    /// Lattice extension: the digest of a component's exports on one host.
    ComponentSignature = "component"."signature", Host;
    /// Scatter-gather: hosts able to run a provider bid.
    ProviderAuction = "provider"."auction", Lattice;
    /// Start a capability provider on one host.
    ProviderStart = "provider"."start", Host;
    /// Stop a capability provider on one host.
    ProviderStop = "provider"."stop", Host;
    /// Put a link (one host answers, from the queue group).
    LinkPut = "link"."put", Lattice;
    /// Delete a link.
    LinkDel = "link"."del", Lattice;
    /// List every link.
    LinkGet = "link"."get", Lattice;
    /// Registry credentials, for every host.
    RegistryPut = "registry"."put", Lattice;
    /// The claims (signed JWTs) of the lattice's components (one host answers, from the
    /// queue group).
    ClaimsGet = "claims"."get", Lattice;
    /// Put a label on one host.
    LabelPut = "label"."put", Host;
    /// Remove a label from one host.
    LabelDel = "label"."del", Host;
    /// Write a named config.
    ConfigPut = "config"."put", Config;
    /// Read a named config.
    ConfigGet = "config"."get", Config;
    /// Delete a named config.
    ConfigDel = "config"."del", Config;
}

impl Op {
    /// Operations that only say whether a host is there: cheap, so a host answers them
    /// without queueing them behind other control work.
    pub fn is_liveness(self) -> bool {
        matches!(self, Op::HostPing | Op::HostGet | Op::HostAlive)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.noun(), self.verb())
    }
}

/// The answer of `host.alive` (in the reply envelope's `message`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alive {
    /// Asked with an empty body: the host is there.
    Alive,
    /// The call named in the body is running on the host.
    Running,
    /// The call named in the body is not running on the host (done, or never seen).
    Finished,
}

impl Alive {
    pub fn as_str(self) -> &'static str {
        match self {
            Alive::Alive => "alive",
            Alive::Running => "running",
            Alive::Finished => "finished",
        }
    }

    pub fn parse(s: &str) -> Option<Alive> {
        [Alive::Alive, Alive::Running, Alive::Finished]
            .into_iter()
            .find(|a| a.as_str() == s)
    }
}

impl fmt::Display for Alive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_round_trips_through_its_tokens() {
        let mut seen = std::collections::HashSet::new();
        for &op in Op::ALL {
            assert_eq!(Op::from_parts(op.noun(), op.verb()), Some(op));
            assert!(seen.insert((op.noun(), op.verb())), "{op} listed twice");
        }
        assert_eq!(Op::from_parts("host", "bogus"), None);
        assert_eq!(Op::HostPing.to_string(), "host.ping");
    }

    #[test]
    fn alive_states_parse_back() {
        for a in [Alive::Alive, Alive::Running, Alive::Finished] {
            assert_eq!(Alive::parse(a.as_str()), Some(a));
        }
        assert_eq!(Alive::parse("maybe"), None);
    }
}
