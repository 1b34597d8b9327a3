//! Zero-copy access to a consumed message's headers with names as raw bytes.
//!
//! rdkafka's own header accessor turns names into `&str` and panics on non-UTF-8; a backup
//! must never panic on what a producer wrote, so this reads librdkafka's headers directly.

use std::ffi::CStr;
use std::os::raw::c_void;
use std::ptr;

use rdkafka::bindings as rdsys;
use rdkafka::message::BorrowedMessage;

use crate::archive::HeaderRef;

/// Iterates one message's headers in order, duplicates and null values included.
#[derive(Clone)]
pub(crate) struct MessageHeaders<'a> {
    headers: *const rdsys::rd_kafka_headers_t,
    index: usize,
    count: usize,
    _message: std::marker::PhantomData<&'a BorrowedMessage<'a>>,
}

impl<'a> MessageHeaders<'a> {
    pub(crate) fn of(message: &'a BorrowedMessage<'a>) -> Self {
        let mut headers: *mut rdsys::rd_kafka_headers_t = ptr::null_mut();
        // SAFETY: the message pointer is valid for the borrow; librdkafka keeps ownership of
        // the headers, which live as long as the message.
        let err = unsafe { rdsys::rd_kafka_message_headers(message.ptr(), &mut headers) };
        let count = if err == rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
            && !headers.is_null()
        {
            unsafe { rdsys::rd_kafka_header_cnt(headers) }
        } else {
            0
        };
        MessageHeaders {
            headers,
            index: 0,
            count,
            _message: std::marker::PhantomData,
        }
    }
}

impl<'a> Iterator for MessageHeaders<'a> {
    type Item = HeaderRef<'a>;

    fn next(&mut self) -> Option<HeaderRef<'a>> {
        if self.index >= self.count {
            return None;
        }
        let mut name: *const std::os::raw::c_char = ptr::null();
        let mut value: *const c_void = ptr::null();
        let mut size: usize = 0;
        // SAFETY: index < count; the returned pointers live as long as the message.
        let err = unsafe {
            rdsys::rd_kafka_header_get_all(
                self.headers,
                self.index,
                &mut name,
                &mut value,
                &mut size,
            )
        };
        self.index += 1;
        if err != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || name.is_null() {
            return Some(HeaderRef {
                name: b"",
                value: None,
            });
        }
        let name = unsafe { CStr::from_ptr(name) }.to_bytes();
        let value = (!value.is_null())
            .then(|| unsafe { std::slice::from_raw_parts(value as *const u8, size) });
        Some(HeaderRef { name, value })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.count - self.index;
        (left, Some(left))
    }
}

impl ExactSizeIterator for MessageHeaders<'_> {}
