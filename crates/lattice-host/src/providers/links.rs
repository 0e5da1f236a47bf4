//! The links a provider process is told of: every link from or to the provider, its named
//! configs resolved to their merged values, sent on start in the host data and then as they
//! change, put on the process's own xkey subject (so only this host's process gets them) and
//! deleted on the provider's id subject (where wasmCloud's provider SDK listens for deletes).

use lattice_proto::provider::{link_del_subject, link_put_subject, InterfaceLinkDefinition};

use super::Providers;

impl Providers {
    /// Every link from or to provider `id`, as the provider receives it.
    pub(super) async fn links_of(&self, id: &str) -> Vec<InterfaceLinkDefinition> {
        let mut out = Vec::new();
        for link in self.state.links.involving(id) {
            // A config that has gone since the link was put is skipped, not fatal.
            let source_config = self
                .merged_config(&link.source_config, false)
                .await
                .unwrap_or_default();
            let target_config = self
                .merged_config(&link.target_config, false)
                .await
                .unwrap_or_default();
            out.push(InterfaceLinkDefinition {
                source_id: link.source_id,
                target: link.target,
                name: link.name,
                wit_namespace: link.wit_namespace,
                wit_package: link.wit_package,
                interfaces: link.interfaces,
                source_config,
                target_config,
                source_secrets: None,
                target_secrets: None,
            });
        }
        out.sort_by(|a, b| key(a).cmp(&key(b)));
        out
    }

    /// Tells the process with `xkey` of the difference between the links it has (`sent`)
    /// and provider `id`'s links now; `sent` becomes the latter.
    pub(super) async fn sync_links(
        &self,
        id: &str,
        xkey: &str,
        sent: &mut Vec<InterfaceLinkDefinition>,
    ) {
        let now = self.links_of(id).await;
        for link in now.iter().filter(|l| !sent.contains(l)) {
            self.send(&link_put_subject(&self.lattice, xkey), link)
                .await;
        }
        for link in sent
            .iter()
            .filter(|l| !now.iter().any(|n| key(n) == key(l)))
        {
            self.send(&link_del_subject(&self.lattice, id), link).await;
        }
        *sent = now;
    }

    async fn send(&self, subject: &str, link: &InterfaceLinkDefinition) {
        let Ok(body) = serde_json::to_vec(link) else {
            return;
        };
        tracing::debug!(subject, source = %link.source_id, target = %link.target, "link to provider");
        if let Err(e) = self.nats.publish(subject.to_string(), body.into()).await {
            tracing::warn!(subject, error = %e, "cannot send a link to a provider");
        }
    }
}

/// What names a link (a changed config makes the same link).
fn key(l: &InterfaceLinkDefinition) -> (&str, &str, &str, &str, &str) {
    (
        &l.source_id,
        &l.target,
        &l.wit_namespace,
        &l.wit_package,
        &l.name,
    )
}
