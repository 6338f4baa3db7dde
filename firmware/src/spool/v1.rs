//! Format 1 (mailbag before the log): one record file and one body file per message in
//! `/q`. Read only to migrate ([`super::migrate`]); [`write_image`] builds such images for
//! the migration tests.
//!
//! ```text
//! /spool.hdr        header record, format 1
//! /q/<id>.b         body as received
//! /q/<id>.m         record: envelope, size, body CRC, delivery state (format-1 record)
//! /q/<id>.t         a record being replaced (an interrupted update: ignored)
//! /bad/<id>.{m,b}   damaged messages moved aside (kept as they are)
//! ```

use std::collections::BTreeMap;

use littlefs2::fs::{Allocation, File, Filesystem};
use littlefs2::io::{Error as LfsError, Write};
use mailbag_hal::BlockDevice;

use super::crc::crc32;
use super::error::SpoolError;
use super::flash::{Barrier, FORMAT_BLOCKS, Flash};
use super::message::{
    Envelope, HEADER_MAGIC, HeaderV1, MessageId, MessageMeta, RcptStatus, Recipient,
};
use super::read::read_file;
use super::record::{self, Kind, RECORD_MAX, RecordError};
use super::store::{lfs_error, path};

pub(super) const QUEUE_DIR: &str = "/q";
const BAD_DIR: &str = "/bad";

/// What the scan of `/q` found.
#[derive(Default)]
pub(super) struct Scan {
    /// Messages whose record and body are complete, in id order.
    pub good: Vec<MessageMeta>,
    /// Messages whose record or body is damaged.
    pub damaged: Vec<MessageId>,
}

pub(super) fn queue_file(id: MessageId, ext: &str) -> String {
    format!("{QUEUE_DIR}/{id}.{ext}")
}

/// Lists the format-1 queue (O(n) lookups of n files: paid once, at migration).
pub(super) fn scan<S: littlefs2::driver::Storage>(
    fs: &Filesystem<'_, S>,
) -> Result<Scan, LfsError> {
    #[derive(Default)]
    struct Files {
        meta: Option<usize>,
        body: Option<usize>,
    }
    let mut files: BTreeMap<MessageId, Files> = BTreeMap::new();
    if !fs.exists(&path(QUEUE_DIR)) {
        return Ok(Scan::default());
    }
    fs.read_dir_and_then(&path(QUEUE_DIR), |dir| {
        for entry in dir {
            let entry = entry?;
            let name = entry.file_name().as_str();
            let Some((stem, ext)) = name.split_once('.') else {
                continue;
            };
            let Ok(id) = stem.parse::<MessageId>() else {
                continue;
            };
            let f = files.entry(id).or_default();
            let len = entry.metadata().len();
            match ext {
                "m" => f.meta = Some(len),
                "b" => f.body = Some(len),
                _ => {}
            }
        }
        Ok(())
    })?;
    let mut scan = Scan::default();
    let mut buf = vec![0u8; RECORD_MAX];
    for (id, f) in files {
        match (f.meta, f.body) {
            // No record, or an empty one: an interrupted enqueue, never acknowledged.
            (None, _) | (Some(0), _) => {}
            (Some(_), body) => {
                let n = read_file(fs, &path(&queue_file(id, "m")), 0, &mut buf)?;
                match record::decode::<MessageMeta>(Kind::Message, &buf[..n]) {
                    Ok(meta)
                        if meta.id == id
                            && body == Some(meta.size as usize)
                            && meta.within_bounds() =>
                    {
                        scan.good.push(meta)
                    }
                    Ok(_) | Err(RecordError::Checksum | RecordError::Truncated) => {
                        scan.damaged.push(id)
                    }
                    Err(_) => scan.damaged.push(id),
                }
            }
        }
    }
    Ok(scan)
}

/// Moves a damaged format-1 message to `/bad` (as format 1 did at mount).
pub(super) fn set_aside<S: littlefs2::driver::Storage>(
    fs: &Filesystem<'_, S>,
    id: MessageId,
) -> Result<(), LfsError> {
    if !fs.exists(&path(BAD_DIR)) {
        fs.create_dir(&path(BAD_DIR))?;
    }
    for ext in ["m", "b"] {
        let from = path(&queue_file(id, ext));
        if fs.exists(&from) {
            let to = path(&format!("{BAD_DIR}/{id}.{ext}"));
            match fs.remove(&to) {
                Err(e) if e != LfsError::NO_SUCH_ENTRY => return Err(e),
                _ => {}
            }
            fs.rename(&from, &to)?;
        }
    }
    Ok(())
}

/// Reads body bytes of a format-1 message.
pub(super) fn read_body<S: littlefs2::driver::Storage>(
    fs: &Filesystem<'_, S>,
    id: MessageId,
    offset: u64,
    buf: &mut [u8],
) -> Result<usize, LfsError> {
    read_file(fs, &path(&queue_file(id, "b")), offset, buf)
}

/// Removes one migrated format-1 message (record first: a body alone is ignored).
pub(super) fn remove_message<S: littlefs2::driver::Storage>(
    fs: &Filesystem<'_, S>,
    id: MessageId,
) -> Result<(), LfsError> {
    for ext in ["m", "b"] {
        match fs.remove(&path(&queue_file(id, ext))) {
            Err(e) if e != LfsError::NO_SUCH_ENTRY => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Removes what is left of `/q` (every message in it was migrated).
pub(super) fn remove_queue<S: littlefs2::driver::Storage>(
    fs: &Filesystem<'_, S>,
) -> Result<usize, LfsError> {
    if !fs.exists(&path(QUEUE_DIR)) {
        return Ok(0);
    }
    let mut names = Vec::new();
    fs.read_dir_and_then(&path(QUEUE_DIR), |dir| {
        for entry in dir {
            let entry = entry?;
            let name = entry.file_name().as_str();
            if name != "." && name != ".." {
                names.push(format!("{QUEUE_DIR}/{name}"));
            }
        }
        Ok(())
    })?;
    for n in &names {
        match fs.remove(&path(n)) {
            Err(e) if e != LfsError::NO_SUCH_ENTRY => return Err(e),
            _ => {}
        }
    }
    fs.remove_dir(&path(QUEUE_DIR))?;
    Ok(names.len())
}

/// One message for [`write_image`]: envelope, body, attempts and last error.
pub type Fixture<'m> = (Envelope, &'m [u8], u32, &'m str);

/// Formats `dev` as a format-1 spool holding `messages` (ids `(1 << 32) | i`), as mailbag
/// before the log wrote it. For migration tests and fixtures.
#[doc(hidden)]
pub fn write_image<D: BlockDevice>(
    dev: D,
    now_unix: u64,
    messages: &[Fixture<'_>],
) -> Result<D, SpoolError> {
    let mut small: Flash<D, FORMAT_BLOCKS> =
        Flash::new(dev, Barrier::None).map_err(SpoolError::Io)?;
    let blocks = small.device_blocks();
    let handle = small.handle();
    Filesystem::format(&mut small).map_err(|e| lfs_error(&handle, e))?;
    drop(handle);
    let dev = small
        .into_device()
        .ok_or_else(|| SpoolError::Io("device still borrowed".into()))?;
    let mut flash: Flash<D> = Flash::new(dev, Barrier::None).map_err(SpoolError::Io)?;
    let handle = flash.handle();
    {
        let mut alloc = Allocation::new();
        let fs = Filesystem::mount(&mut alloc, &mut flash).map_err(|e| lfs_error(&handle, e))?;
        let io = |e| lfs_error(&handle, e);
        if blocks > FORMAT_BLOCKS {
            fs.grow(blocks).map_err(io)?;
        }
        let header = HeaderV1 {
            magic: HEADER_MAGIC,
            created_unix: now_unix,
            mounts: 1,
            block_count: blocks as u32,
        };
        let mut buf = vec![0u8; RECORD_MAX];
        let bytes = record::encode_version(Kind::Header, 1, &header, &mut buf)?;
        fs.write(&path("/spool.hdr"), bytes).map_err(io)?;
        fs.create_dir(&path(QUEUE_DIR)).map_err(io)?;
        for (i, (env, body, attempts, error)) in messages.iter().enumerate() {
            let id = MessageId((1 << 32) | i as u64);
            let mut recipients = Vec::new();
            for r in &env.recipients {
                recipients.push(Recipient {
                    address: r.clone(),
                    status: RcptStatus::Pending,
                });
            }
            let mut meta = MessageMeta {
                id,
                received_unix: now_unix + i as u64,
                size: body.len() as u64,
                body_crc: crc32(0, body),
                sender: env.sender.clone(),
                recipients,
                attempts: *attempts,
                next_attempt_unix: if *attempts > 0 { now_unix + 900 } else { 0 },
                last_error: String::new(),
                warned: false,
                verdict: None,
            };
            meta.set_last_error(error);
            File::create_and_then(&fs, &path(&queue_file(id, "b")), |f| f.write_all(body))
                .map_err(io)?;
            let bytes = record::encode_version(Kind::Message, 1, &meta, &mut buf)?;
            fs.write(&path(&queue_file(id, "m")), bytes).map_err(io)?;
        }
    }
    handle.sync().map_err(|e| SpoolError::Io(e.to_string()))?;
    drop(handle);
    flash
        .into_device()
        .ok_or_else(|| SpoolError::Io("device still borrowed".into()))
}
