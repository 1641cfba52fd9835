"""A TCP proxy on loopback that delays every chunk by a set one-way latency, in both directions
(this kernel has no netem): what SSH to a vast instance across the internet feels like.

    with LatencyProxy(target_port=2222, one_way=0.05) as proxy:   # 100 ms round trip
        ssh -p proxy.port ...

Chunks keep their order and are not held back by each other: a chunk read at t is written at
t + one_way, so a stream keeps its throughput and only gains the latency.
"""
import asyncio
import socket
import threading
import time


class LatencyProxy:
    def __init__(self, target_port, one_way, target_host="127.0.0.1"):
        self.target = (target_host, target_port)
        self.one_way = one_way
        self.port = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self._thread.start()
        self._ready.wait()
        return self

    def __exit__(self, *exc):
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    async def _shutdown(self):
        """Connections still open are cut, as a network going away would."""
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _serve(self):
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._connection, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()

    async def _connection(self, client_reader, client_writer):
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        for writer in (client_writer, upstream_writer):
            writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await asyncio.gather(self._pipe(client_reader, upstream_writer), self._pipe(upstream_reader, client_writer))
        except asyncio.CancelledError:  # the proxy stops
            client_writer.close()
            upstream_writer.close()

    async def _pipe(self, reader, writer):
        queue = asyncio.Queue()

        async def deliver():
            while (item := await queue.get()) is not None:
                due, chunk = item
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                writer.write(chunk)
                await writer.drain()
            writer.close()

        delivering = asyncio.ensure_future(deliver())
        try:
            while chunk := await reader.read(65536):
                queue.put_nowait((time.monotonic() + self.one_way, chunk))
        except ConnectionError:
            pass
        queue.put_nowait(None)
        try:
            await delivering
        except ConnectionError:
            pass
