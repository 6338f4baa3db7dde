//! Format 1 → format 2, at mount (see `docs/spool.md`, "Migration from format 1").
//!
//! Each format-1 message is written into the log with its id, envelope and delivery state;
//! once a batch is durable its old files are removed, so migration needs only a batch of
//! free flash, not a second copy of the queue. The header says format 1 until every
//! message is in the log; a power cut at any point is resumed at the next mount: messages
//! already in the log (found by id) are not written again, so nothing is lost or doubled.

use std::ops::ControlFlow;

use mailbag_hal::BlockDevice;

use super::crc::crc32;
use super::error::SpoolError;
use super::frame::{Body, CHUNK, Kind, MessageRec};
use super::message::{MessageId, MessageMeta};
use super::replay::load_message;
use super::store::{Spool, write_header};
use super::v1;
use super::writer::{Pending, Writer};

/// Bytes migrated between two syncs.
const BATCH_BYTES: u64 = 1 << 20;

/// Converts the format-1 queue of a spool whose log was just replayed.
pub(super) fn from_v1<D: BlockDevice>(spool: &mut Spool<'_, D>) -> Result<(), SpoolError> {
    let scan = v1::scan(&spool.fs).map_err(|e| spool.io(e))?;
    for id in &scan.damaged {
        v1::set_aside(&spool.fs, *id).map_err(|e| spool.io(e))?;
        spool.st.damaged += 1;
    }
    let mut todo = Vec::new();
    for meta in scan.good {
        if spool.st.index.find(meta.id).is_some() {
            // Written before a power cut: only its old files are left to remove.
            v1::remove_message(&spool.fs, meta.id).map_err(|e| spool.io(e))?;
        } else {
            todo.push(meta);
        }
    }
    let mut todo = todo.into_iter();
    let mut migrated = 0u32;
    let mut bad: Vec<MessageId> = Vec::new();
    spool.run(|w| {
        let mut done: Vec<MessageId> = Vec::new();
        let mut bytes = 0u64;
        let mut finished = true;
        for meta in todo.by_ref() {
            match import(w, &meta) {
                Ok(()) => {
                    migrated += 1;
                    bytes += meta.size;
                    done.push(meta.id);
                }
                Err(SpoolError::Corrupt(_)) => bad.push(meta.id),
                Err(e) => return ControlFlow::Break(Err(e)),
            }
            if bytes >= BATCH_BYTES {
                finished = false;
                break;
            }
        }
        // The old files go only once their copies are durable.
        if let Err(e) = w.sync() {
            return ControlFlow::Break(Err(e));
        }
        for id in done {
            if let Err(e) = v1::remove_message(w.fs, id) {
                return ControlFlow::Break(Err(super::store::lfs_error(&w.st.flash, e)));
            }
        }
        if finished {
            ControlFlow::Break(Ok(()))
        } else {
            ControlFlow::Continue(())
        }
    })??;
    for id in bad {
        v1::set_aside(&spool.fs, id).map_err(|e| spool.io(e))?;
        spool.st.damaged += 1;
    }
    // Every message is in the log: from now on this is a format-2 spool.
    spool.sync_device()?;
    write_header(&spool.fs, &spool.st.header).map_err(|e| spool.io(e))?;
    spool.sync_device()?;
    v1::remove_queue(&spool.fs).map_err(|e| spool.io(e))?;
    spool.st.migrated = migrated;
    if migrated > 0 {
        crate::log!("spool: converted {migrated} message(s) from format 1 to format 2");
    }
    Ok(())
}

/// Removes what a migration interrupted after its header switch left of `/q`.
pub(super) fn finish_v1_cleanup<D: BlockDevice>(spool: &Spool<'_, D>) -> Result<(), SpoolError> {
    v1::remove_queue(&spool.fs)
        .map(|_| ())
        .map_err(|e| spool.io(e))
}

/// Writes one format-1 message into the log (body checked against its record).
fn import<D: BlockDevice>(
    w: &mut Writer<'_, '_, '_, D>,
    meta: &MessageMeta,
) -> Result<(), SpoolError> {
    let id = meta.id;
    let damaged = |why: &str| SpoolError::Corrupt(format!("format-1 message {id}: {why}"));
    let mut buf = vec![0u8; CHUNK];
    let mut crc = 0u32;
    let mut off = 0u64;
    let io = |w: &Writer<'_, '_, '_, D>, e| super::store::lfs_error(&w.st.flash, e);
    let (body, data): (Body, Vec<u8>) = if meta.size as usize <= CHUNK {
        let n = v1::read_body(w.fs, id, 0, &mut buf[..meta.size as usize]).map_err(|e| io(w, e))?;
        if n as u64 != meta.size || crc32(0, &buf[..n]) != meta.body_crc {
            return Err(damaged("body does not match its record"));
        }
        buf.truncate(n);
        (Body::Inline, buf)
    } else {
        let mut p = Pending {
            id,
            slot: 0,
            dom: 0,
            size: 0,
            crc: 0,
            chunks: None,
            closed: false,
        };
        while off < meta.size {
            let want = CHUNK.min((meta.size - off) as usize);
            let n = v1::read_body(w.fs, id, off, &mut buf[..want]).map_err(|e| io(w, e))?;
            if n < want {
                return Err(damaged("body is short"));
            }
            crc = crc32(crc, &buf[..n]);
            w.copy_chunk(&mut p, &buf[..n])?;
            off += n as u64;
        }
        if crc != meta.body_crc {
            return Err(damaged("body does not match its record"));
        }
        if let Some(seg) = p.chunks.as_ref().map(|c| c.first.seg) {
            if let Some(s) = w.st.segs.get_mut(seg) {
                s.pending = s.pending.saturating_sub(1);
            }
        }
        (w.body_ref(id, p.chunks.as_mut())?, Vec::new())
    };
    let rec = MessageRec {
        meta: meta.clone(),
        body,
    };
    let loc = w.write_frame(Kind::Message, &rec, &data)?;
    load_message(w.st, &rec, loc);
    Ok(())
}
