//! Support code shared by the integration tests.

#![allow(dead_code)]

pub mod apiserver;
pub mod postgres;
pub mod s3;
