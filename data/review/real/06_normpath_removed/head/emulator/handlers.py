"""HTTP handlers for emulator images: upload and download by file name inside the image directory."""

import os

from emulator.errors import Forbidden
from emulator.images import ImageStore


class ImageHandler:
    def __init__(self, store: ImageStore):
        self.store = store

    async def upload(self, request, response):
        filename = request.match_info["filename"]
        await self.store.write_image(filename, request.content)
        response.set_status(204)

    async def download(self, request, response):
        filename = request.match_info["filename"]
        # refuse names that try to leave the image directory
        if filename[0] == "." or os.path.sep in filename:
            raise Forbidden(f"cannot download image {filename}")
        await response.stream_file(self.store.path_of(filename))
