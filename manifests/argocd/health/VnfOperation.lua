-- Argo CD health check for vnf.operators.dev/VnfOperation: a one-shot run, judged by status.phase.
-- Argo CD runs it with only the base and table libraries: no string, math or os functions here.
-- Succeeded > Healthy; Failed > Degraded; Pending, Running or no status yet > Progressing.
-- The spec is immutable, so there is no generation to wait for.
local hs = {}

if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Pending deletion"
  return hs
end

local status = obj.status
local phase = nil
if status ~= nil then
  phase = status.phase
end

if phase == "Succeeded" then
  hs.status = "Healthy"
  if status.rowCount ~= nil then
    hs.message = "Succeeded: " .. tostring(status.rowCount) .. " row(s)"
  else
    hs.message = "Succeeded"
  end
  return hs
end

if phase == "Failed" then
  hs.status = "Degraded"
  if status.error ~= nil and status.error ~= "" then
    hs.message = "Failed: " .. status.error
  else
    hs.message = "Failed"
  end
  return hs
end

hs.status = "Progressing"
if phase == "Running" then
  hs.message = "Running"
elseif phase == nil or phase == "Pending" then
  hs.message = "Pending"
else
  hs.message = "Unknown phase " .. tostring(phase)
end
return hs
