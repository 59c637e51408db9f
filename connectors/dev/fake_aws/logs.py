"""CloudWatch Logs: FilterLogEvents honours logStreamNamePrefix.

AWS: "filters the results to include only events from log streams that have names starting with
this prefix"; moto ignores it. A SageMaker job's logs are the streams "<job name>/...".
"""

from __future__ import annotations

import json
from typing import Any

from moto.logs.responses import LogsResponse

from ._support import wraps_method


@wraps_method(LogsResponse, "filter_log_events")
def _filter_log_events(original: Any, self: LogsResponse) -> Any:
    prefix = self._get_param("logStreamNamePrefix")
    if not prefix or self._get_param("logStreamNames"):
        return original(self)
    group = self._get_param("logGroupName")
    self.logs_backend.filter_log_events(
        group, [], 0, 0, 1, None, "", False
    )  # an unknown group: as moto answers (0: no time bound)
    names = [name for name in self.logs_backend.groups[group].streams if name.startswith(prefix)]
    if not names:
        return json.dumps({"events": [], "searchedLogStreams": []})
    events, token, searched = self.logs_backend.filter_log_events(
        group,
        names,
        self._get_param("startTime"),
        self._get_param("endTime"),
        self._get_param("limit"),
        self._get_param("nextToken"),
        self._get_param("filterPattern"),
        self._get_param("interleaved", False),
    )
    return json.dumps({"events": events, "nextToken": token, "searchedLogStreams": searched})
