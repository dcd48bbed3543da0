//! A power-loss disk on a host (`--hosts` with the `power-loss` fault), driven from here: the
//! harness's own binary, copied to the host, runs `faultline disk-serve` there as root over a
//! conversation on the host's connection (`disk_server.rs` is the other side). A power cut
//! is one round trip. The disk ends when asked (`unmount`), and also when the connection
//! closes: the server's stdin ends, and it unmounts.

use anyhow::{Result, anyhow, bail};
use serde_json::Value;
use tokio::sync::Mutex;

use super::host::{RemoteHost, quote};
use super::ssh::Conversation;

/// One node's power-loss disk, served on its host.
pub struct RemoteDisk {
    node: String,
    /// `None` once unmounted.
    server: Mutex<Option<Conversation>>,
}

impl std::fmt::Debug for RemoteDisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteDisk")
            .field("node", &self.node)
            .finish()
    }
}

impl RemoteDisk {
    /// Starts `program disk-serve dir` (`program`: the harness's binary on the host) as
    /// root on `host`, for `node`, and waits until the disk is mounted on `dir`.
    pub(super) async fn mount(
        host: &RemoteHost,
        program: &str,
        dir: &str,
        node: &str,
    ) -> Result<RemoteDisk> {
        let script = format!("exec {} disk-serve {}", quote(program), quote(dir));
        let server = host
            .converse_as_root(&format!("serving the power-loss disk of {node}"), &script)
            .await?;
        let disk = RemoteDisk {
            node: node.to_string(),
            server: Mutex::new(Some(server)),
        };
        disk.ask("ready").await?;
        Ok(disk)
    }

    /// Sends `command` and returns the answer, a failure being an error.
    async fn ask(&self, command: &str) -> Result<Value> {
        let mut server = self.server.lock().await;
        let Some(server) = server.as_mut() else {
            bail!("the power-loss disk of {} is unmounted", self.node);
        };
        let line = server.ask(command).await?;
        let answer: Value = serde_json::from_str(&line).map_err(|error| {
            anyhow!(
                "the power-loss disk of {} answered {line:?} to {command}: {error}",
                self.node
            )
        })?;
        match answer.get("error").and_then(Value::as_str) {
            Some(error) => bail!("the power-loss disk of {}: {command}: {error}", self.node),
            None => Ok(answer),
        }
    }

    /// Makes everything written so far durable: the set-up is over.
    pub async fn checkpoint(&self) -> Result<()> {
        self.ask("checkpoint").await.map(drop)
    }

    /// Cuts the power (torn with the seed `torn`, if given): what was not fsynced is lost.
    /// Returns what was lost, as the local disk's `Loss::to_json`.
    pub async fn lose_unsynced(&self, torn: Option<u64>) -> Result<Value> {
        let command = match torn {
            Some(seed) => format!("cut {seed}"),
            None => "cut".to_string(),
        };
        let mut answer = self.ask(&command).await?;
        Ok(answer["loss"].take())
    }

    /// Unmounts the disk, leaving its files as plain files in the data dir, and ends the
    /// server. Safe to call again.
    pub async fn unmount(&self) -> Result<()> {
        if self.server.lock().await.is_none() {
            return Ok(());
        }
        let unmounted = self.ask("unmount").await;
        if let Some(server) = self.server.lock().await.take() {
            server.finish().await?;
        }
        unmounted.map(drop)
    }
}
