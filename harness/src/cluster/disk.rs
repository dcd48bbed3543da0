//! One node's power-loss disk, served on this machine or on the node's host (`--hosts`):
//! what the cluster does to either (checkpoint, cut, unmount) is said once here.

use std::sync::Arc;

use anyhow::{Result, anyhow};
use faultline_nemesis::PowerLossDisk;

use crate::remote::RemoteDisk;

/// A power-loss disk mounted on a node's data dir.
#[derive(Clone)]
pub enum NodeDisk {
    Local(Arc<PowerLossDisk>),
    Remote(Arc<RemoteDisk>),
}

impl NodeDisk {
    /// Makes everything written so far durable: the set-up is over and the test begins.
    pub async fn checkpoint(&self) -> Result<()> {
        match self {
            NodeDisk::Local(disk) => {
                disk.checkpoint();
                Ok(())
            }
            NodeDisk::Remote(disk) => disk.checkpoint().await,
        }
    }

    /// The power cut (torn with the seed `torn`, if given): returns what was lost, as
    /// `Loss::to_json` has it.
    pub async fn lose_unsynced(&self, torn: Option<u64>) -> Result<serde_json::Value> {
        match self {
            NodeDisk::Local(disk) => Ok(disk.lose_unsynced(torn).to_json()),
            NodeDisk::Remote(disk) => disk.lose_unsynced(torn).await,
        }
    }

    /// Unmounts the disk, leaving what the node wrote as plain files in its data dir.
    pub async fn unmount(self) -> Result<()> {
        match self {
            NodeDisk::Local(disk) => {
                let disk = Arc::try_unwrap(disk)
                    .map_err(|_| anyhow!("the disk is still in use (a power cut under way)"))?;
                tokio::task::spawn_blocking(move || {
                    let dir = disk.mountpoint().to_path_buf();
                    disk.unmount_into(&dir)
                })
                .await
                .map_err(|panicked| anyhow!("{panicked}"))?
                .map_err(anyhow::Error::from)
            }
            NodeDisk::Remote(disk) => disk.unmount().await,
        }
    }
}
