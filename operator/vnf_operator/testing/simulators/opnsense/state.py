"""The simulated config.xml (persistent) and the running ruleset/routing table (applied)."""

from __future__ import annotations

import base64
import copy
import hmac
import secrets
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

from .fields import ModelContext
from .frr import NEIGHBOR
from .models import DNAT_RULE, FILTER_RULE, SNAT_RULE, route_is_active, route_spec
from .mvc import Collection, Record, nest, new_uuid

DEFAULT_INTERFACES = {"lan": "LAN", "wan": "WAN", "opt1": "DMZ"}
DEFAULT_DEVICES = {"lan": "vtnet1", "wan": "vtnet0", "opt1": "vtnet2"}
DEFAULT_GATEWAYS = {"WAN_GW": "203.0.113.1", "LAN_GW": "192.168.1.254"}


def generate_api_key() -> tuple[str, str]:
    """Key and secret in the same alphabet and length as OPNsense (80 chars of base64)."""
    key = base64.b64encode(secrets.token_bytes(60)).decode()
    secret = base64.b64encode(secrets.token_bytes(60)).decode()
    return key, secret


@dataclass
class ApiKey:
    key: str
    secret_hash: str


@dataclass
class User:
    uuid: str
    name: str
    password_hash: str
    uid: str = "0"
    scope: str = "system"
    apikeys: list[ApiKey] = field(default_factory=list)


@dataclass
class Running:
    """What pf and the routing table actually use (rebuilt from config on boot)."""

    filter_rules: dict[str, Record] = field(default_factory=dict)
    snat_rules: dict[str, Record] = field(default_factory=dict)
    dnat_rules: dict[str, Record] = field(default_factory=dict)
    routes: dict[str, Record] = field(default_factory=dict)


class OpnsenseConfig:
    """config.xml: every API write is saved here at once, as OPNsense does."""

    def __init__(self, routes_use_enabled: bool, hostname: str) -> None:
        self.hostname = hostname
        self.domain = "localdomain"
        self.interfaces = dict(DEFAULT_INTERFACES)
        self.gateways = dict(DEFAULT_GATEWAYS)
        self.filter = Collection(FILTER_RULE)
        self.snat = Collection(SNAT_RULE)
        self.dnat = Collection(DNAT_RULE)
        self.routes = Collection(route_spec(routes_use_enabled))
        self.bgp_neighbors = Collection(NEIGHBOR)
        self.users: dict[str, User] = {}
        self.revision = {"username": "root@127.0.0.1", "time": f"{time.time():.4f}", "description": ""}

    @property
    def context(self) -> ModelContext:
        return ModelContext(interfaces=self.interfaces, gateways=self.gateways)

    def save(self, username: str, description: str) -> None:
        self.revision = {"username": username, "time": f"{time.time():.4f}", "description": description}

    def user_by_name(self, name: str) -> User | None:
        return next((user for user in self.users.values() if user.name == name), None)

    def user_by_api_key(self, key: str) -> tuple[User, ApiKey] | None:
        for user in self.users.values():
            for apikey in user.apikeys:
                if hmac.compare_digest(apikey.key, key):
                    return user, apikey
        return None

    def filter_snapshot(self) -> dict[str, dict[str, Record]]:
        return {
            "filter": self.filter.copy_records(),
            "snat": self.snat.copy_records(),
            "dnat": self.dnat.copy_records(),
        }

    def restore_filter_snapshot(self, snapshot: dict[str, dict[str, Record]]) -> None:
        self.filter.records = copy.deepcopy(snapshot["filter"])
        self.snat.records = copy.deepcopy(snapshot["snat"])
        self.dnat.records = copy.deepcopy(snapshot["dnat"])

    def build_running(self) -> Running:
        return Running(
            filter_rules=self.filter.copy_records(),
            snat_rules=self.snat.copy_records(),
            dnat_rules=self.dnat.copy_records(),
            routes={key: dict(value) for key, value in self.routes.records.items() if route_is_active(value)},
        )

    # ------------------------------------------------------------------ XML export/import
    def to_xml(self, product_version: str) -> bytes:
        root = ET.Element("opnsense")
        ET.SubElement(root, "version").text = product_version
        system = ET.SubElement(root, "system")
        ET.SubElement(system, "hostname").text = self.hostname
        ET.SubElement(system, "domain").text = self.domain
        for user in self.users.values():
            node = ET.SubElement(system, "user", uuid=user.uuid)
            for tag, value in (
                ("name", user.name),
                ("password", user.password_hash),
                ("scope", user.scope),
                ("uid", user.uid),
            ):
                ET.SubElement(node, tag).text = value
            keys = ET.SubElement(node, "apikeys")
            for apikey in user.apikeys:
                item = ET.SubElement(keys, "item")
                ET.SubElement(item, "key").text = apikey.key
                ET.SubElement(item, "secret").text = apikey.secret_hash
        interfaces = ET.SubElement(root, "interfaces")
        for name, descr in self.interfaces.items():
            node = ET.SubElement(interfaces, name)
            ET.SubElement(node, "if").text = DEFAULT_DEVICES.get(name, name)
            ET.SubElement(node, "descr").text = descr
        gateways = ET.SubElement(root, "gateways")
        for name, address in self.gateways.items():
            node = ET.SubElement(gateways, "gateway_item")
            ET.SubElement(node, "name").text = name
            ET.SubElement(node, "gateway").text = address
        _records_to_xml(ET.SubElement(root, "staticroutes", version="1.0.0"), "route", self.routes)
        opnsense_node = ET.SubElement(root, "OPNsense")
        filter_node = ET.SubElement(ET.SubElement(opnsense_node, "Firewall"), "Filter")
        filter_node.set("version", "1.0.4")
        _records_to_xml(ET.SubElement(filter_node, "rules"), "rule", self.filter)
        _records_to_xml(ET.SubElement(filter_node, "snatrules"), "rule", self.snat)
        _records_to_xml(ET.SubElement(root, "nat"), "rule", self.dnat)
        quagga = ET.SubElement(ET.SubElement(opnsense_node, "quagga"), "bgp")
        _records_to_xml(ET.SubElement(quagga, "neighbors"), "neighbor", self.bgp_neighbors)
        revision = ET.SubElement(root, "revision")
        for key, value in self.revision.items():
            ET.SubElement(revision, key).text = value
        ET.indent(root)
        body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
        return b'<?xml version="1.0"?>\n' + body + b"\n"

    def load_xml(self, data: bytes) -> None:
        """Replace this config with an exported one; raises ValueError when it is not one."""
        try:
            root = ET.fromstring(data)  # noqa: S314 - loopback test input, produced by to_xml
        except ET.ParseError as exc:
            raise ValueError("not an XML document") from exc
        if root.tag != "opnsense":
            raise ValueError("not an OPNsense configuration")
        system = root.find("system")
        if system is not None:
            self.hostname = system.findtext("hostname", self.hostname)
            self.domain = system.findtext("domain", self.domain)
            users: dict[str, User] = {}
            for node in system.findall("user"):
                user = User(
                    uuid=node.get("uuid") or new_uuid(),
                    name=node.findtext("name", ""),
                    password_hash=node.findtext("password", ""),
                    scope=node.findtext("scope", "user"),
                    uid=node.findtext("uid", ""),
                    apikeys=[
                        ApiKey(item.findtext("key", ""), item.findtext("secret", ""))
                        for item in node.findall("apikeys/item")
                    ],
                )
                users[user.uuid] = user
            if users:
                self.users = users
        interfaces = root.find("interfaces")
        if interfaces is not None:
            self.interfaces = {node.tag: node.findtext("descr", node.tag.upper()) for node in interfaces}
        gateways = root.find("gateways")
        if gateways is not None:
            self.gateways = {
                node.findtext("name", ""): node.findtext("gateway", "")
                for node in gateways.findall("gateway_item")
            }
        _records_from_xml(root.find("staticroutes"), self.routes)
        _records_from_xml(root.find("OPNsense/Firewall/Filter/rules"), self.filter)
        _records_from_xml(root.find("OPNsense/Firewall/Filter/snatrules"), self.snat)
        _records_from_xml(root.find("nat"), self.dnat)
        _records_from_xml(root.find("OPNsense/quagga/bgp/neighbors"), self.bgp_neighbors)


def _records_to_xml(parent: ET.Element, tag: str, collection: Collection) -> None:
    for record_uuid, record in collection.records.items():
        node = ET.SubElement(parent, tag, uuid=record_uuid)
        _dict_to_xml(node, nest(record))


def _dict_to_xml(parent: ET.Element, data: dict[str, Any]) -> None:
    for key, value in data.items():
        child = ET.SubElement(parent, key)
        if isinstance(value, dict):
            _dict_to_xml(child, value)
        else:
            child.text = str(value)


def _records_from_xml(parent: ET.Element | None, collection: Collection) -> None:
    if parent is None:
        return
    records: dict[str, Record] = {}
    for node in parent:
        record = collection.new_record()
        for name in collection.spec.fields:
            value = node.findtext(name.replace(".", "/"))
            if value is not None:
                record[name] = value
        records[node.get("uuid") or new_uuid()] = record
    collection.records = records
