//! [`forwarding_object_store!`]: an `ObjectStore` impl for a wrapper whose
//! `inner` field is the wrapped store, written once.
//!
//! The store's wrappers ([`crate::hashed_writes`]; `trajectory_query`'s
//! `LocalReads`) each change one or two methods of `object_store::ObjectStore`
//! and pass every other call to the wrapped store unchanged. The macro
//! writes those pass-throughs, so each wrapper shows only what it changes.

/// Implements `object_store::ObjectStore` for `$wrapper`, a type with an
/// `inner: Arc<dyn ObjectStore>` field: the methods given in the braces as
/// written, and `get_opts`, `delete_stream`, `list`, `list_with_offset`,
/// `list_with_delimiter`, `copy_opts` and `rename_opts` forwarded to
/// `self.inner`. The given methods must be `put_opts`,
/// `put_multipart_opts` and `get_ranges` (`get_ranges` has a default in the
/// trait; give it to keep the wrapped store's own). They are written as in
/// an `#[async_trait]` impl; the macro applies the attribute.
#[macro_export]
macro_rules! forwarding_object_store {
    ($wrapper:ty { $($own:item)* }) => {
        #[$crate::__async_trait]
        impl $crate::deltalake::logstore::object_store::ObjectStore for $wrapper {
            $($own)*

            async fn get_opts(
                &self,
                location: &$crate::deltalake::logstore::object_store::path::Path,
                options: $crate::deltalake::logstore::object_store::GetOptions,
            ) -> $crate::deltalake::logstore::object_store::Result<
                $crate::deltalake::logstore::object_store::GetResult,
            > {
                self.inner.get_opts(location, options).await
            }

            fn delete_stream(
                &self,
                locations: $crate::__futures::stream::BoxStream<
                    'static,
                    $crate::deltalake::logstore::object_store::Result<
                        $crate::deltalake::logstore::object_store::path::Path,
                    >,
                >,
            ) -> $crate::__futures::stream::BoxStream<
                'static,
                $crate::deltalake::logstore::object_store::Result<
                    $crate::deltalake::logstore::object_store::path::Path,
                >,
            > {
                self.inner.delete_stream(locations)
            }

            fn list(
                &self,
                prefix: Option<&$crate::deltalake::logstore::object_store::path::Path>,
            ) -> $crate::__futures::stream::BoxStream<
                'static,
                $crate::deltalake::logstore::object_store::Result<
                    $crate::deltalake::logstore::object_store::ObjectMeta,
                >,
            > {
                self.inner.list(prefix)
            }

            fn list_with_offset(
                &self,
                prefix: Option<&$crate::deltalake::logstore::object_store::path::Path>,
                offset: &$crate::deltalake::logstore::object_store::path::Path,
            ) -> $crate::__futures::stream::BoxStream<
                'static,
                $crate::deltalake::logstore::object_store::Result<
                    $crate::deltalake::logstore::object_store::ObjectMeta,
                >,
            > {
                self.inner.list_with_offset(prefix, offset)
            }

            async fn list_with_delimiter(
                &self,
                prefix: Option<&$crate::deltalake::logstore::object_store::path::Path>,
            ) -> $crate::deltalake::logstore::object_store::Result<
                $crate::deltalake::logstore::object_store::ListResult,
            > {
                self.inner.list_with_delimiter(prefix).await
            }

            async fn copy_opts(
                &self,
                from: &$crate::deltalake::logstore::object_store::path::Path,
                to: &$crate::deltalake::logstore::object_store::path::Path,
                options: $crate::deltalake::logstore::object_store::CopyOptions,
            ) -> $crate::deltalake::logstore::object_store::Result<()> {
                self.inner.copy_opts(from, to, options).await
            }

            async fn rename_opts(
                &self,
                from: &$crate::deltalake::logstore::object_store::path::Path,
                to: &$crate::deltalake::logstore::object_store::path::Path,
                options: $crate::deltalake::logstore::object_store::RenameOptions,
            ) -> $crate::deltalake::logstore::object_store::Result<()> {
                self.inner.rename_opts(from, to, options).await
            }
        }
    };
}
