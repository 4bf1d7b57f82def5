//! The chart's Argo CD health check (`charts/vitess-operator/docs/health.lua`), run on live
//! objects the way Argo CD runs it; shared by the test binaries that `#[path]` it in.

use anyhow::Result;
use vitess_operator_e2e::workspace_dir;

/// Runs the chart's Argo CD health check (`charts/vitess-operator/docs/health.lua`) on
/// `object` as Argo CD does (global `obj`, the script returns `hs`): (status, message).
pub fn argocd_health(object: &serde_json::Value) -> Result<(String, String)> {
    use mlua::{LuaSerdeExt, SerializeOptions};
    let script =
        std::fs::read_to_string(workspace_dir().join("charts/vitess-operator/docs/health.lua"))?;
    let lua = mlua::Lua::new();
    // JSON null is Lua nil, as in Argo CD.
    let options = SerializeOptions::new()
        .serialize_none_to_null(false)
        .serialize_unit_to_null(false);
    let obj = lua
        .to_value_with(object, options)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    lua.globals()
        .set("obj", obj)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let hs: mlua::Table = lua
        .load(&script)
        .eval()
        .map_err(|e| anyhow::anyhow!("health.lua: {e}"))?;
    let status: String = hs.get("status").map_err(|e| anyhow::anyhow!("{e}"))?;
    let message: Option<String> = hs.get("message").map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((status, message.unwrap_or_default()))
}
