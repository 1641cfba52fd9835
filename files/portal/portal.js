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

class HttpError extends Error {
	constructor(status) { super("HTTP " + status); this.status = status; }
}
const FETCH = {credentials: "same-origin", cache: "no-store"};

async function getJSON(url) {
	const response = await fetch(url, Object.assign({headers: {Accept: "application/json"}}, FETCH));
	if (!response.ok) throw new HttpError(response.status);
	return response.json();
}

function why(error) {
	if (error instanceof HttpError) return error.message;
	if (error instanceof SyntaxError) return "not JSON; signed out?";
	return "no answer";
}

// Replaces a box's content only when the data changed, so hovering and selecting are not disturbed.
function update(box, data, render) {
	const key = JSON.stringify(data);
	if (box.dataset.key === key) return;
	box.dataset.key = key;
	box.replaceChildren(...render(data));
}

// Runs step() now and again `ms` after each run ends; pauses while the tab is hidden.
function repeat(step, ms) {
	let timer = null;
	async function run() {
		clearTimeout(timer);
		timer = null;
		if (!document.hidden) {
			try { await step(); } catch (error) { console.error(error); }
		}
		timer = setTimeout(run, ms);
	}
	document.addEventListener("visibilitychange", function () { if (!document.hidden && timer !== null) run(); });
	run();
}
