//! Record framing, shared by WAL segments and snapshot files.
//!
//! A record is a 12-byte header followed by a body:
//!
//! | bytes   | field                                               |
//! |---------|-----------------------------------------------------|
//! | 0..4    | body length, u32 little-endian                      |
//! | 4..8    | CRC32C of the body                                  |
//! | 8..12   | CRC32C of bytes 0..8: the header checks itself      |
//! | 12..    | body: one [`RecordKind`] byte, then a postcard payload |
//!
//! The header carries its own checksum so that a damaged length field is seen as damage
//! instead of being trusted: a flipped bit that made the length point past the end of the
//! file would otherwise look exactly like a torn write and silently cost every record after
//! it.
//!
//! [`is_torn`] decides whether a bad record at the tail of the newest WAL segment is a torn
//! write or corruption, by the rule in the `storage` module docs.

use serde::Serialize;

use super::StorageError;

/// Bytes in a record header.
const HEADER_LEN: usize = 12;
/// The unit a disk writes atomically; a torn write damages whole sectors.
const SECTOR_LEN: usize = 512;

/// What a record holds; the first byte of every body. 0 is never a kind, so a zeroed body
/// that somehow passed its checksum is still rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum RecordKind {
    /// WAL: the Raft hard state (term, vote, commit).
    HardState = 1,
    /// WAL: a batch of consecutive log entries, replacing the log from its first index on.
    Entries = 2,
    /// WAL: a snapshot covers the log up to its index; later entries stay.
    CompactedTo = 3,
    /// WAL: a snapshot from the leader replaced the whole log.
    ReplacedBy = 4,
    /// A snapshot file's only record, as builds before membership changes wrote it: the
    /// snapshot without its configuration (which was the initial voters). Read, not written.
    LegacySnapshotFile = 5,
    /// WAL: the first record after an fsync, holding the segment offset that fsync made
    /// durable. Read only after damage, to tell a torn write from damage to synced data.
    SyncMark = 6,
    /// WAL: the first record of every segment, rewritten in place after each fsync: the
    /// commit index of the latest hard state an fsync had made durable. A fixed 8 bytes, so
    /// that rewriting it moves nothing.
    DurableCommit = 7,
    /// A snapshot file's only record: the whole `Snapshot`, configuration included.
    SnapshotFile = 8,
}

impl RecordKind {
    fn from_byte(byte: u8) -> Option<RecordKind> {
        [
            RecordKind::HardState,
            RecordKind::Entries,
            RecordKind::CompactedTo,
            RecordKind::ReplacedBy,
            RecordKind::LegacySnapshotFile,
            RecordKind::SyncMark,
            RecordKind::DurableCommit,
            RecordKind::SnapshotFile,
        ]
        .into_iter()
        .find(|kind| *kind as u8 == byte)
    }

    /// What the record holds, for error messages.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            RecordKind::HardState => "a hard state",
            RecordKind::Entries => "log entries",
            RecordKind::CompactedTo => "a compaction marker",
            RecordKind::ReplacedBy => "a snapshot installation marker",
            RecordKind::SnapshotFile | RecordKind::LegacySnapshotFile => "a snapshot",
            RecordKind::SyncMark => "a sync mark",
            RecordKind::DurableCommit => "the durable commit index",
        }
    }
}

/// One intact record.
#[derive(Debug)]
pub(crate) struct Frame<'a> {
    pub(crate) kind: RecordKind,
    /// The postcard-encoded payload (the body without its kind byte).
    pub(crate) payload: &'a [u8],
    /// Bytes the whole record takes, header included.
    pub(crate) len: usize,
}

/// Why the bytes at some offset are not an intact record.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Invalid {
    #[error("the file ends inside a record header")]
    PartialHeader,
    #[error("record header checksum mismatch")]
    HeaderChecksum,
    #[error("the file ends inside a record body of {body_len} bytes")]
    PartialBody { body_len: usize },
    #[error("record body checksum mismatch")]
    BodyChecksum { body_len: usize },
    #[error("record of unknown kind {0}")]
    UnknownKind(u8),
}

/// Appends one record holding `payload` to `out`. The payload is encoded in place, so a
/// reused `out` costs no allocation per record. On error `out` is left as it was.
pub(crate) fn encode<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    kind: RecordKind,
    payload: &T,
) -> Result<(), StorageError> {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_LEN]);
    out.push(kind as u8);
    let encoded = postcard::to_io(payload, &mut *out)
        .map(|_| ())
        .map_err(|e| e.to_string());
    let body_len = out.len() - start - HEADER_LEN;
    let length_field = encoded.and_then(|_| {
        u32::try_from(body_len)
            .map_err(|_| format!("the record would be {body_len} bytes, over the 4 GiB limit"))
    });
    let length_field = match length_field {
        Ok(length_field) => length_field,
        Err(reason) => {
            out.truncate(start);
            return Err(StorageError::Encode {
                what: kind.describe(),
                reason,
            });
        }
    };
    let body_crc = crc32c::crc32c(&out[start + HEADER_LEN..]);
    let header = &mut out[start..start + HEADER_LEN];
    header[0..4].copy_from_slice(&length_field.to_le_bytes());
    header[4..8].copy_from_slice(&body_crc.to_le_bytes());
    let header_crc = crc32c::crc32c(&header[0..8]);
    header[8..12].copy_from_slice(&header_crc.to_le_bytes());
    Ok(())
}

/// Reads the record at the start of `bytes` (which run to the end of the file).
pub(crate) fn decode(bytes: &[u8]) -> Result<Frame<'_>, Invalid> {
    let header = bytes.get(..HEADER_LEN).ok_or(Invalid::PartialHeader)?;
    let field = |at: usize| {
        u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    if crc32c::crc32c(&header[0..8]) != field(8) {
        return Err(Invalid::HeaderChecksum);
    }
    let body_len = field(0) as usize;
    let body = bytes
        .get(HEADER_LEN..HEADER_LEN + body_len)
        .ok_or(Invalid::PartialBody { body_len })?;
    if crc32c::crc32c(body) != field(4) {
        return Err(Invalid::BodyChecksum { body_len });
    }
    let kind_byte = body.first().copied().unwrap_or(0);
    let kind = RecordKind::from_byte(kind_byte).ok_or(Invalid::UnknownKind(kind_byte))?;
    Ok(Frame {
        kind,
        payload: &body[1..],
        len: HEADER_LEN + body_len,
    })
}

/// Whether the invalid record at `offset` of the newest segment `file` is what an
/// unfinished write leaves behind (see the module docs) rather than corruption.
pub(crate) fn is_torn(file: &[u8], offset: usize, invalid: &Invalid) -> bool {
    let damaged_end = match *invalid {
        Invalid::PartialHeader | Invalid::PartialBody { .. } => return true,
        Invalid::UnknownKind(_) => return false,
        Invalid::HeaderChecksum => offset + HEADER_LEN,
        Invalid::BodyChecksum { body_len } => offset + HEADER_LEN + body_len,
    };
    let only_zeros_follow = file[damaged_end.min(file.len())..].iter().all(|&b| b == 0);
    only_zeros_follow || overlaps_zero_sector(file, offset, damaged_end)
}

/// Whether some whole sector of `file` that overlaps `start..end` is all zeros.
fn overlaps_zero_sector(file: &[u8], start: usize, end: usize) -> bool {
    let first_sector = start / SECTOR_LEN * SECTOR_LEN;
    (first_sector..end.min(file.len()))
        .step_by(SECTOR_LEN)
        .filter_map(|sector| file.get(sector..sector + SECTOR_LEN))
        .any(|sector| sector.iter().all(|&b| b == 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: RecordKind, payload: &str) -> Vec<u8> {
        let mut out = Vec::new();
        encode(&mut out, kind, payload).expect("a string encodes");
        out
    }

    #[test]
    fn records_decode_back_one_after_another() {
        let mut file = record(RecordKind::HardState, "first");
        file.extend(record(RecordKind::Entries, "second"));

        let first = decode(&file).expect("first record is intact");
        assert_eq!(first.kind, RecordKind::HardState);
        assert_eq!(postcard::from_bytes::<&str>(first.payload), Ok("first"));
        let second = decode(&file[first.len..]).expect("second record is intact");
        assert_eq!(second.kind, RecordKind::Entries);
        assert_eq!(postcard::from_bytes::<&str>(second.payload), Ok("second"));
        assert_eq!(first.len + second.len, file.len());
    }

    #[test]
    fn every_damage_is_detected_and_named() {
        let intact = record(RecordKind::Entries, "payload");
        assert_eq!(
            decode(&intact[..HEADER_LEN - 1]).unwrap_err(),
            Invalid::PartialHeader
        );
        assert_eq!(
            decode(&intact[..intact.len() - 1]).unwrap_err(),
            Invalid::PartialBody {
                body_len: intact.len() - HEADER_LEN
            }
        );

        let mut bad_length = intact.clone();
        bad_length[1] ^= 0x40;
        assert_eq!(decode(&bad_length).unwrap_err(), Invalid::HeaderChecksum);

        let mut bad_body = intact.clone();
        bad_body[HEADER_LEN + 3] ^= 0x01;
        assert_eq!(
            decode(&bad_body).unwrap_err(),
            Invalid::BodyChecksum {
                body_len: intact.len() - HEADER_LEN
            }
        );
    }

    #[test]
    fn an_unknown_kind_with_good_checksums_is_rejected() {
        let mut file = record(RecordKind::Entries, "payload");
        file[HEADER_LEN] = 99;
        let body_crc = crc32c::crc32c(&file[HEADER_LEN..]);
        file[4..8].copy_from_slice(&body_crc.to_le_bytes());
        let header_crc = crc32c::crc32c(&file[0..8]);
        file[8..12].copy_from_slice(&header_crc.to_le_bytes());

        assert_eq!(decode(&file).unwrap_err(), Invalid::UnknownKind(99));
        assert!(!is_torn(&file, 0, &Invalid::UnknownKind(99)));
    }

    #[test]
    fn a_damaged_record_followed_by_data_is_corruption() {
        let mut file = record(RecordKind::Entries, "damaged");
        file.extend(record(RecordKind::Entries, "intact"));
        file[HEADER_LEN + 2] ^= 0x10;
        let invalid = decode(&file).unwrap_err();

        assert!(!is_torn(&file, 0, &invalid));
    }

    #[test]
    fn a_damaged_record_followed_only_by_zeros_is_torn() {
        let mut file = record(RecordKind::Entries, "garbled at the end");
        let last = file.len() - 1;
        file[last] ^= 0xff;
        let invalid = decode(&file).unwrap_err();
        assert!(is_torn(&file, 0, &invalid), "a garbled final record");

        file.extend([0; 3000]);
        assert!(
            is_torn(&file, 0, &invalid),
            "a garbled record before a zero-filled tail"
        );

        let zeros = vec![0; 100];
        let invalid = decode(&zeros).unwrap_err();
        assert_eq!(invalid, Invalid::HeaderChecksum);
        assert!(is_torn(&zeros, 0, &invalid), "a zero-filled tail");
    }

    #[test]
    fn a_record_with_a_zeroed_sector_is_torn_even_if_data_follows() {
        let payload = "x".repeat(3 * SECTOR_LEN);
        let mut file = record(RecordKind::Entries, &payload);
        let damaged_len = file.len();
        file.extend(record(RecordKind::Entries, "written after it"));
        file[SECTOR_LEN..2 * SECTOR_LEN].fill(0);
        let invalid = decode(&file).unwrap_err();
        assert_eq!(
            invalid,
            Invalid::BodyChecksum {
                body_len: damaged_len - HEADER_LEN
            }
        );

        assert!(is_torn(&file, 0, &invalid));
    }
}
