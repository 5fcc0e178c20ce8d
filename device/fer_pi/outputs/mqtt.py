"""MQTT out: face events, the room's state and Home Assistant discovery (paho-mqtt).

Topics, with base = <topic_prefix>/<device_id>:
  base/availability  "online" / "offline", retained; "offline" is also the last will
  base/state         the health snapshot with the room summary, retained; on a change
                     and every interval
  base/face          one JSON object per face event (events.FaceEvent)
  <discovery_prefix>/sensor/<device_id>/<sensor>/config   Home Assistant discovery

No picture, crop or thumbnail is ever published: only labels and numbers.

paho's network thread does the connecting, the keepalive and the reconnecting with
backoff; publishing from the pipeline's thread only queues a message (bounded while
the broker is away), so a slow or absent broker never stalls the board.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from fer_pi import __version__
from fer_pi.core.records import FrameResult
from fer_pi.core.settings import ConfigError, read_secret, setting
from fer_pi.outputs.events import EventStream
from fer_pi.outputs.health import HealthState

log = logging.getLogger(__name__)

ONLINE, OFFLINE = "online", "offline"
QUEUE_LIMIT = 1000  # messages held while the broker is away; older ones are kept, new dropped
STATE_MIN_GAP_S = 0.5  # a changing room is reported at most this often


@dataclass(frozen=True)
class MqttConfig:
    """[mqtt]: app.config reads its keys like every section's."""

    enabled: bool = setting(False, "publish face events, the room summary and health to an "
                            "MQTT broker (never images)", flag="--mqtt", flag_value=True)
    host: str = setting("localhost", "broker host name or address", flag="--mqtt-host")
    port: int = setting(1883, "broker port (8883 is usual with TLS)", 1, 65535,
                        flag="--mqtt-port")
    topic_prefix: str = setting("fer-pi", "topics are <prefix>/<device_id>/availability, "
                                "/state and /face")
    device_id: str = setting("", "this device's name in topics and Home Assistant (empty: the "
                             "host name)")
    username: str = setting("", "broker user name (empty: anonymous)")
    password: str = setting("", "broker password (prefer password_file)")
    password_file: str = setting("", "file whose first line is the broker password")
    tls: bool = setting(False, "connect with TLS")
    ca_file: str = setting("", "CA certificate(s) to check the broker against (empty with tls: "
                           "the system's CAs)")
    cert_file: str = setting("", "client certificate for TLS client authentication")
    key_file: str = setting("", "private key of cert_file")
    qos: int = setting(1, "MQTT quality of service for events and state", 0, 2)
    interval_s: float = setting(10.0, "seconds between periodic state and per-face updates "
                                "(changes go out at once)", 0.5, 3600.0)
    keepalive_s: int = setting(30, "MQTT keepalive; the broker publishes 'offline' after "
                               "1.5 times this without a word", 5, 3600)
    reconnect_max_s: int = setting(60, "longest wait between reconnection attempts, seconds "
                                   "(backoff starts at 1 s)", 1, 3600)
    discovery: bool = setting(True, "announce sensors with Home Assistant MQTT discovery")
    discovery_prefix: str = setting("homeassistant", "Home Assistant's discovery prefix")



def device_id(cfg: MqttConfig) -> str:
    if cfg.device_id:
        return cfg.device_id
    name = "".join(c if c.isalnum() or c in "-_" else "-" for c in socket.gethostname())
    return name or "fer-pi"


def topics(cfg: MqttConfig) -> dict[str, str]:
    base = f"{cfg.topic_prefix}/{device_id(cfg)}"
    return {"availability": f"{base}/availability", "state": f"{base}/state",
            "face": f"{base}/face"}


def discovery_messages(cfg: MqttConfig, labels: tuple[str, ...]) -> list[tuple[str, dict]]:
    """(topic, payload) for each sensor: faces, dominant emotion, faces per emotion, FPS
    and camera state, all read from the one retained state topic."""
    dev = device_id(cfg)
    t = topics(cfg)
    device = {"identifiers": [f"fer-pi-{dev}"], "name": f"fer-pi {dev}",
              "manufacturer": "fer-pi", "model": "emotion display board",
              "sw_version": __version__}
    sensors: list[tuple[str, dict]] = [
        ("faces", {"name": "Faces", "value_template": "{{ value_json.room.faces }}",
                   "state_class": "measurement", "icon": "mdi:account-group"}),
        ("dominant_emotion", {"name": "Dominant emotion",
                              "value_template": "{{ value_json.room.dominant }}",
                              "icon": "mdi:emoticon-outline"}),
    ]
    for label in labels:
        sensors.append((f"{label}_faces", {
            "name": f"{label.capitalize()} faces",
            "value_template": f"{{{{ value_json.room.counts.{label} }}}}",
            "state_class": "measurement", "icon": "mdi:emoticon-outline"}))
    sensors.append(("fps", {"name": "FPS", "value_template": "{{ value_json.fps }}",
                            "unit_of_measurement": "fps", "state_class": "measurement",
                            "entity_category": "diagnostic", "icon": "mdi:speedometer"}))
    sensors.append(("camera", {"name": "Camera", "value_template": "{{ value_json.camera.state }}",
                               "entity_category": "diagnostic", "icon": "mdi:cctv"}))
    out = []
    for obj, payload in sensors:
        payload.update({"unique_id": f"fer-pi_{dev}_{obj}", "state_topic": t["state"],
                        "availability_topic": t["availability"], "payload_available": ONLINE,
                        "payload_not_available": OFFLINE, "device": device})
        out.append((f"{cfg.discovery_prefix}/sensor/{dev}/{obj}/config", payload))
    return out


def _import_paho():
    try:
        import paho.mqtt.client as paho
    except ImportError:
        raise ConfigError("mqtt.enabled needs paho-mqtt: pip install paho-mqtt") from None
    return paho


def _password(cfg: MqttConfig) -> str | None:
    if cfg.password_file:
        return read_secret(cfg.password_file, "mqtt.password_file")
    return cfg.password or None


class MqttPublisher:
    def __init__(self, cfg: MqttConfig, labels: tuple[str, ...], state: HealthState):
        self.paho = _import_paho()  # refused before anything starts when it is missing
        self.cfg, self.labels, self.state = cfg, labels, state
        self.topics = topics(cfg)
        self.events = EventStream(labels, cfg.interval_s)
        self.client = None
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._setup: threading.Thread | None = None
        self._last_state: dict | None = None
        self._last_state_t = 0.0
        self._next_interval = 0.0
        self.dropped = 0  # messages refused while the queue was full
        state.mqtt = self.link  # for /status, /metrics, health

    def link(self) -> dict:
        """The broker link as health reports it."""
        return {"connected": self.connected.is_set(), "dropped": self.dropped}

    # -- connection -------------------------------------------------------------------
    def start(self) -> None:
        """Connect in the background; errors are logged and retried, never raised. The
        client exists on return when it can be built, so the first frames' events are
        queued (QoS 1 and 2) until the broker answers."""
        if not self._try_setup(1.0):
            self._setup = threading.Thread(target=self._setup_loop, name="mqtt-setup",
                                           daemon=True)
            self._setup.start()

    def _try_setup(self, next_delay: float) -> bool:
        try:
            client = self._make_client()
            client.connect_async(self.cfg.host, self.cfg.port, self.cfg.keepalive_s)
            client.loop_start()  # its thread retries the connection with backoff
        except (OSError, ValueError, ConfigError) as exc:  # unreadable password or TLS files
            log.error("mqtt: cannot set up the client for %s:%d: %s; retrying in %.0f s",
                      self.cfg.host, self.cfg.port, exc, next_delay)
            return False
        self.client = client
        return True

    def _setup_loop(self) -> None:
        delay = 1.0
        while not self._stop.wait(delay):
            delay = min(delay * 2, self.cfg.reconnect_max_s)
            if self._try_setup(delay):
                return

    def _make_client(self):
        paho, cfg = self.paho, self.cfg
        client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                             client_id=f"fer-pi-{device_id(cfg)}", clean_session=True)
        client.reconnect_delay_set(1, cfg.reconnect_max_s)
        client.max_queued_messages_set(QUEUE_LIMIT)
        client.will_set(self.topics["availability"], OFFLINE, qos=1, retain=True)
        if cfg.username:
            client.username_pw_set(cfg.username, _password(cfg))
        if cfg.tls:
            client.tls_set(ca_certs=cfg.ca_file or None, certfile=cfg.cert_file or None,
                           keyfile=cfg.key_file or None)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_message = self._on_message
        return client

    def _on_connect(self, client, _userdata, _flags, reason_code, _properties) -> None:
        if reason_code.is_failure:
            log.error("mqtt: broker %s:%d refused the connection: %s", self.cfg.host,
                      self.cfg.port, reason_code)
            return
        log.info("mqtt: connected to %s:%d as %s", self.cfg.host, self.cfg.port,
                 self.topics["availability"].rsplit("/", 1)[0])
        client.publish(self.topics["availability"], ONLINE, qos=1, retain=True)
        if self.cfg.discovery:
            # Home Assistant says "online" here when it restarts: announce again then
            client.subscribe(f"{self.cfg.discovery_prefix}/status", qos=1)
            self._announce(client)
        if self._last_state is not None:
            client.publish(self.topics["state"], json.dumps(self._last_state), self.cfg.qos,
                           retain=True)
        self.connected.set()

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _properties) -> None:
        self.connected.clear()
        if not self._stop.is_set():
            log.warning("mqtt: disconnected from %s:%d (%s); reconnecting", self.cfg.host,
                        self.cfg.port, reason_code)

    def _on_connect_fail(self, _client, _userdata) -> None:
        log.warning("mqtt: cannot reach broker %s:%d; retrying (at most every %d s)",
                    self.cfg.host, self.cfg.port, self.cfg.reconnect_max_s)

    def _on_message(self, client, _userdata, msg) -> None:
        if msg.topic == f"{self.cfg.discovery_prefix}/status" and msg.payload == b"online":
            self._announce(client)

    def _announce(self, client) -> None:
        for topic, payload in discovery_messages(self.cfg, self.labels):
            client.publish(topic, json.dumps(payload), qos=1, retain=True)

    # -- the pipeline's side ------------------------------------------------------------
    def _publish(self, topic: str, payload: dict, retain: bool = False) -> None:
        client = self.client
        if client is None:
            return
        info = client.publish(topic, json.dumps(payload, separators=(",", ":")), self.cfg.qos,
                              retain=retain)
        if info.rc == self.paho.MQTT_ERR_QUEUE_SIZE:
            self.dropped += 1

    def on_frame(self, result: FrameResult | None, room: dict,
                 snapshot: Callable[[], dict]) -> None:
        """Called once per frame with the frame's room summary and the health snapshot's
        maker (the App's, updated for this frame); with None while the camera is being
        retried: the faces then go (``gone``) and the state still goes out at the
        interval."""
        for ev in self.events.update(result) if result is not None else self.events.clear():
            self._publish(self.topics["face"], ev.to_dict())
        now = time.monotonic()
        changed = self._last_state is None or room != self._last_state.get("room")
        due = now >= self._next_interval
        if due or (changed and now - self._last_state_t >= STATE_MIN_GAP_S):
            snap = snapshot()
            self._last_state, self._last_state_t = snap, now
            if due:
                self._next_interval = now + self.cfg.interval_s
            self._publish(self.topics["state"], snap, retain=True)

    def close(self, timeout_s: float = 2.0) -> None:
        """Say "offline" (a clean stop sends no last will) and disconnect."""
        self._stop.set()
        client = self.client
        if client is None:
            return
        for ev in self.events.clear():
            self._publish(self.topics["face"], ev.to_dict())
        if self.connected.is_set():
            info = client.publish(self.topics["availability"], OFFLINE, qos=1, retain=True)
            try:
                info.wait_for_publish(timeout_s)
            except (RuntimeError, ValueError):
                pass
        client.disconnect()
        client.loop_stop()
