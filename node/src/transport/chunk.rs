//! Large requests (snapshots) travel in chunks: each chunk is its own `POST /raft/large`
//! of at most [`CHUNK_BYTES`], named by a header that both sides read with [`Chunk`]. The
//! receiver appends each chunk to its spool file and decodes the request once the last one is
//! in, so no request body is ever larger than a chunk, and a slow link fails one chunk's
//! timeout rather than a whole snapshot's.

use axum::http::HeaderMap;

/// The most bytes a chunk carries.
pub const CHUNK_BYTES: usize = 4 << 20;

/// The header naming a chunk: `<transfer>/<offset>/<total>`.
pub const CHUNK_HEADER: &str = "faultline-chunk";

/// Which part of which large request a chunk is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// Chosen at random by the sender for each request, so that chunks of two requests are
    /// never taken for one.
    pub transfer: u64,
    /// Where this chunk's bytes start in the request.
    pub offset: u64,
    /// The request's whole length.
    pub total: u64,
}

impl Chunk {
    /// The chunks of a request of `total` bytes: `(chunk, range of the request's bytes)`,
    /// at least one, even for an empty request.
    pub fn split(
        transfer: u64,
        total: usize,
    ) -> impl Iterator<Item = (Chunk, std::ops::Range<usize>)> {
        let count = total.div_ceil(CHUNK_BYTES).max(1);
        (0..count).map(move |n| {
            let start = n * CHUNK_BYTES;
            let end = (start + CHUNK_BYTES).min(total);
            let chunk = Chunk {
                transfer,
                offset: start as u64,
                total: total as u64,
            };
            (chunk, start..end)
        })
    }

    /// The header's value.
    pub fn header_value(&self) -> String {
        format!("{}/{}/{}", self.transfer, self.offset, self.total)
    }

    /// Reads the header, if present and well formed.
    pub fn from_headers(headers: &HeaderMap) -> Option<Chunk> {
        let value = headers.get(CHUNK_HEADER)?.to_str().ok()?;
        let mut parts = value.split('/').map(|part| part.parse::<u64>().ok());
        let (Some(Some(transfer)), Some(Some(offset)), Some(Some(total)), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        (offset <= total).then_some(Chunk {
            transfer,
            offset,
            total,
        })
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CHUNK_HEADER, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn a_request_splits_into_chunks_that_cover_it_once_in_order() {
        let total = 2 * CHUNK_BYTES + 5;
        let chunks: Vec<_> = Chunk::split(7, total).collect();
        assert_eq!(chunks.len(), 3);
        let mut next = 0;
        for (chunk, range) in &chunks {
            assert_eq!(chunk.offset as usize, next);
            assert_eq!(range.start, next);
            assert!(range.len() <= CHUNK_BYTES);
            assert_eq!(chunk.total as usize, total);
            next = range.end;
        }
        assert_eq!(next, total);
        assert_eq!(
            Chunk::split(7, 0).count(),
            1,
            "an empty request is one chunk"
        );
        assert_eq!(Chunk::split(7, CHUNK_BYTES).count(), 1);
    }

    #[test]
    fn the_header_reads_back_and_anything_else_is_no_chunk() {
        let chunk = Chunk {
            transfer: u64::MAX,
            offset: 4,
            total: 9,
        };
        assert_eq!(
            Chunk::from_headers(&headers(&chunk.header_value())),
            Some(chunk)
        );
        for bad in ["", "1/2", "1/2/3/4", "1/x/3", "1/4/3", "-1/0/3", "1//3"] {
            assert_eq!(Chunk::from_headers(&headers(bad)), None, "{bad:?}");
        }
        assert_eq!(Chunk::from_headers(&HeaderMap::new()), None);
    }
}
