"""A client of Streamlit's own websocket protocol (/_stcore/stream), for driving many real reruns
on a real server faster than a browser can: what the browser's frontend sends when a widget
changes (a `rerun_script` BackMsg with the URL's query string and the widgets' values) and what
it reads back (ForwardMsgs up to `script_finished`), without rendering anything.

A widget is set by its user key: its id, which Streamlit derives from the key and the page, is
learnt from the elements of the first run that draws it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState, WidgetStates
from websockets.sync.client import connect

_WIDGET_ID_PREFIX = "$$ID-"


class RerunFailed(AssertionError):
    """A rerun the app did not finish cleanly: an exception or an error message on the page."""


@dataclass
class Rerun:
    """What one rerun drew: its text (markdown, captions, headings and messages) and its widgets' ids."""

    texts: list[str] = field(default_factory=list)
    widget_ids: dict[str, str] = field(default_factory=dict)


class StreamClient:
    """One browser tab's session on a server, reruns one at a time."""

    def __init__(self, url: str, timeout: float = 120):
        host = url.removeprefix("http://")
        # The first subprotocol entry is the one the server selects; the frontend sends "streamlit".
        self._closing = contextlib.ExitStack()
        self._socket = self._closing.enter_context(connect(
            f"ws://{host}/_stcore/stream", subprotocols=["streamlit"], origin=url, max_size=None,
            open_timeout=timeout))
        self._timeout = timeout
        self._widget_ids: dict[str, str] = {}

    def rerun(self, page_name: str, query_string: str = "", widgets: dict[str, str] | None = None) -> Rerun:
        """Run `page_name` as the frontend would with this URL query string and these text
        widgets (by user key) set; returns once the script has finished."""
        states = [WidgetState(id=self._widget_ids[key], string_value=value) for key, value in (widgets or {}).items()]
        request = BackMsg(rerun_script=ClientState(query_string=query_string, page_name=page_name,
                                                   widget_states=WidgetStates(widgets=states)))
        self._socket.send(request.SerializeToString())
        drawn = Rerun()
        while True:
            message = ForwardMsg()
            message.ParseFromString(self._socket.recv(timeout=self._timeout))
            kind = message.WhichOneof("type")
            if kind == "delta":
                _read_element(message.delta, drawn)
            elif kind == "script_finished":
                if message.script_finished == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    continue  # superseded by the run that follows; only that one finishes the request
                if message.script_finished != ForwardMsg.FINISHED_SUCCESSFULLY:
                    raise RerunFailed(f"{page_name}?{query_string}: script finished with status "
                                      f"{message.script_finished}")
                self._widget_ids.update(drawn.widget_ids)
                return drawn

    def close(self) -> None:
        self._closing.close()

    def __enter__(self) -> StreamClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _read_element(delta, drawn: Rerun) -> None:
    element = delta.new_element
    kind = element.WhichOneof("type")
    if kind is None:
        return
    if kind == "exception":
        raise RerunFailed(f"exception on the page: {element.exception.type}: {element.exception.message}")
    if kind == "alert" and element.alert.format == Alert.ERROR:
        raise RerunFailed(f"error on the page: {element.alert.body}")
    if kind in ("markdown", "alert", "heading"):
        drawn.texts.append(getattr(element, kind).body)
        return
    widget_id = getattr(getattr(element, kind), "id", "")
    if widget_id.startswith(_WIDGET_ID_PREFIX) and "-" in widget_id.removeprefix(_WIDGET_ID_PREFIX):
        # $$ID-<hash>-<user key>; the key itself may hold dashes
        user_key = widget_id.removeprefix(_WIDGET_ID_PREFIX).split("-", 1)[1]
        drawn.widget_ids[user_key] = widget_id
