-- Argo CD health check for the planetscale.com/v2 kinds (VitessCluster, VitessCell,
-- VitessKeyspace, VitessShard, EtcdLockserver, VitessBackupStorage, VitessBackup,
-- VitessBackupSchedule).
-- Every kind's status has observedGeneration and a standard Ready condition.
hs = {}
if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end
local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    if condition.type == "Ready" then
      hs.message = condition.message
      if condition.status == "True" then
        hs.status = "Healthy"
      elseif condition.reason == "InvalidSpec" then
        -- Bad input waits for an edit: retrying will not help.
        hs.status = "Degraded"
      else
        hs.status = "Progressing"
      end
      return hs
    end
  end
end
-- Kinds without a Ready condition (VitessBackup inventory entries) are healthy once observed.
hs.status = "Healthy"
return hs
