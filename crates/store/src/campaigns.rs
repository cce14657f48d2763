//! The store's campaigns area: templates and their versions. A change to a template's
//! parts adds a version and moves the template to it; versions are never changed, so
//! what was sent with one can be shown again. Written once for both backends.

use crate::StoreResult;
use crate::model::*;
use crate::row::Columns;
use crate::run::{FromRow, Step};

impl FromRow for TemplateRecord {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(TemplateRecord {
            id: r.get("id")?,
            tenant_id: r.get("tenant_id")?,
            name: r.get("name")?,
            version: r.get("version")?,
            current: r.get("current")?,
            content_enc: r.get("content_enc")?,
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
        })
    }
}

/// A template with one version's parts: `v.version` is the version read.
const TEMPLATE_SELECT: &str = "SELECT t.id, t.tenant_id, t.name, v.version, t.version AS current, \
     v.content_enc, t.created_at, t.updated_at \
     FROM templates t JOIN template_versions v ON v.template_id = t.id AND v.tenant_id = t.tenant_id";

sql! {
    /// A new template (`$1` id, `$2` tenant, `$3` name, `$4` time) at version 1.
    INSERT_TEMPLATE = "INSERT INTO templates (id, tenant_id, name, version, created_at, updated_at) \
         VALUES ($1, $2, $3, 1, $4, $4)";
    /// Version `$3` of tenant `$1`'s template `$2`: parts `$4`, made at `$5`.
    INSERT_TEMPLATE_VERSION = "INSERT INTO template_versions \
         (tenant_id, template_id, version, content_enc, created_at) VALUES ($1, $2, $3, $4, $5)";
    /// Tenant `$1`'s templates at their current versions, by name.
    TEMPLATES = "{TEMPLATE_SELECT} AND v.version = t.version WHERE t.tenant_id = $1 ORDER BY t.name";
    /// Tenant `$1`'s template whose id or name is `$2`, at version `$3` (0: the current one).
    FIND_TEMPLATE = "{TEMPLATE_SELECT} AND v.version = CASE WHEN $3 = 0 THEN t.version ELSE $3 END \
         WHERE t.tenant_id = $1 AND (t.id = $2 OR t.name = $2)";
    /// Version `$3 + 1` of tenant `$1`'s template `$2`, parts `$4`, made at `$5`, if the
    /// template is at version `$3` (nothing if another change came first).
    INSERT_NEXT_VERSION = "INSERT INTO template_versions \
         (tenant_id, template_id, version, content_enc, created_at) \
         SELECT $1, $2, $3 + 1, $4, $5 WHERE EXISTS (SELECT 1 FROM templates \
         WHERE tenant_id = $1 AND id = $2 AND version = $3)";
    /// Tenant `$1`'s template `$2` moves from version `$3` to the next, at `$4`.
    BUMP_TEMPLATE = "UPDATE templates SET version = version + 1, updated_at = $4 \
         WHERE tenant_id = $1 AND id = $2 AND version = $3";
    /// Tenant `$1`'s template `$2` takes name `$3` at `$4`.
    RENAME_TEMPLATE = "UPDATE templates SET name = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2";
    /// Tenant `$1`'s template `$2`'s versions go.
    DELETE_TEMPLATE_VERSIONS = "DELETE FROM template_versions WHERE tenant_id = $1 AND template_id = $2";
    /// Tenant `$1`'s template `$2` goes.
    DELETE_TEMPLATE = "DELETE FROM templates WHERE tenant_id = $1 AND id = $2";
}

store_area! {
    /// Campaign templates and their versions.
    CampaignStore {}
    shared {
        /// Saves a new template at version 1; `Conflict("template")` if the tenant has
        /// one of that name.
        fn create_template(&self, t: TemplateRecord) -> StoreResult<()> {
            let steps = vec![
                Step::new(&INSERT_TEMPLATE, args![t.id.clone(), t.tenant_id.clone(), t.name, t.created_at]),
                Step::new(
                    &INSERT_TEMPLATE_VERSION,
                    args![t.tenant_id, t.id, 1i64, t.content_enc, t.created_at],
                ),
            ];
            self.write_all("create_template", Some("template"), steps).await.map(drop)
        }
        /// A tenant's templates at their current versions, by name.
        fn templates(&self, tenant_id: &str) -> StoreResult<Vec<TemplateRecord>> {
            self.rows("templates", &TEMPLATES, args![tenant_id]).await
        }
        /// A tenant's template named by id or name, at `version` (`None`: its current
        /// one); `None` if there is no such template or version.
        fn find_template(
            &self,
            tenant_id: &str,
            key: &str,
            version: Option<i64>,
        ) -> StoreResult<Option<TemplateRecord>> {
            let args = args![tenant_id, key, version.unwrap_or(0)];
            self.row("find_template", &FIND_TEMPLATE, args).await
        }
        /// Gives a template new parts as version `from + 1`; `false` if the template is
        /// not at version `from` any more (or is gone).
        fn add_template_version(
            &self,
            tenant_id: &str,
            id: &str,
            from: i64,
            content_enc: Vec<u8>,
            at: i64,
        ) -> StoreResult<bool> {
            let steps = vec![
                Step::new(&INSERT_NEXT_VERSION, args![tenant_id, id, from, content_enc, at]),
                Step::new(&BUMP_TEMPLATE, args![tenant_id, id, from, at]),
            ];
            let counts = self.write_all("add_template_version", Some("template_version"), steps).await?;
            Ok(counts.first().copied().unwrap_or(0) > 0)
        }
        /// Renames a template; `false` if there is no such template, `Conflict("template")`
        /// if the name is taken.
        fn rename_template(&self, tenant_id: &str, id: &str, name: &str, at: i64) -> StoreResult<bool> {
            let args = args![tenant_id, id, name, at];
            Ok(self.write("rename_template", Some("template"), &RENAME_TEMPLATE, args).await? > 0)
        }
        /// Deletes a template and its versions; `false` if there was none.
        fn delete_template(&self, tenant_id: &str, id: &str) -> StoreResult<bool> {
            let steps = vec![
                Step::new(&DELETE_TEMPLATE_VERSIONS, args![tenant_id, id]),
                Step::new(&DELETE_TEMPLATE, args![tenant_id, id]),
            ];
            let counts = self.write_all("delete_template", None, steps).await?;
            Ok(counts.last().copied().unwrap_or(0) > 0)
        }
    }
}
