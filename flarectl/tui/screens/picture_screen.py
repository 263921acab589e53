"""What every screen drawn from the app's latest picture shares: the status bar kept current
on each picture, and no drawing before the screen's tables have their columns."""

from __future__ import annotations

from textual.screen import Screen

from ..widgets.status_bar import StatusBar

__all__ = ["PictureScreen"]


class PictureScreen(Screen):
    """The app calls `refresh_picture()` on each new picture; a screen draws it in `draw`."""

    _ready = False  # columns exist only after on_mount; a picture may arrive before

    def picture_ready(self) -> None:
        """End of on_mount: the tables are set up; draw from now on, starting with the picture there is."""
        self._ready = True
        self.refresh_picture()

    def refresh_picture(self) -> None:
        if not self._ready:
            return
        self.query_one(StatusBar).show(self.app)
        picture = self.app.picture
        if picture is not None:
            self.draw(picture)

    def draw(self, picture: dict) -> None:
        raise NotImplementedError
