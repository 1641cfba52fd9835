// Managed by Red: helpers shared by the portal page and the logs viewer (files/portal).
// Data from the server is only ever inserted as text (textContent, setAttribute), never as HTML.
"use strict";
function $(id) { return document.getElementById(id); }

// el("a", {href: x}, "text", child...): attributes by setAttribute, strings as text nodes.
function el(tag, attrs) {
	const node = document.createElement(tag);
	for (const [key, value] of Object.entries(attrs || {})) {
		if (value !== null && value !== undefined && value !== false) node.setAttribute(key, String(value));
	}
	for (let i = 2; i < arguments.length; i++) {
		const child = arguments[i];
		if (child === null || child === undefined) continue;
		node.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
	}
	return node;
}

function text(value) { return typeof value === "string" ? value : (value === null || value === undefined ? "" : String(value)); }
function count(value) { return Number.isFinite(value) && value >= 0 ? value : 0; }

function humanBytes(n) {
	n = count(n);
	if (n < 1000) return n + " B";
	const units = ["kB", "MB", "GB", "TB", "PB"];
	let i = -1;
	do { n /= 1000; i++; } while (n >= 1000 && i < units.length - 1);
	return n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0) + " " + units[i];
}

function pad(n) { return String(n).padStart(2, "0"); }
function localTime(date) {
	return date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) + " " +
		pad(date.getHours()) + ":" + pad(date.getMinutes()) + ":" + pad(date.getSeconds());
}
// "2026-11-24T10:00:00+0000" (strftime's %z) or RFC 3339 -> Date, or null.
function parseTime(value) {
	if (typeof value !== "string") return null;
	const ms = Date.parse(value.trim().replace(/([+-]\d\d)(\d\d)$/, "$1:$2"));
	return Number.isFinite(ms) ? new Date(ms) : null;
}
function age(date) {
	const s = Math.max(0, Math.round((Date.now() - date.getTime()) / 1000));
	if (s < 90) return s + " s ago";
	if (s < 5400) return Math.round(s / 60) + " min ago";
	if (s < 172800) return Math.round(s / 3600) + " h ago";
	return Math.round(s / 86400) + " days ago";
}
